// The CA as a real process: `zf ca serve` on a loopback port 0, HTTPS, problem+json.
#include <sys/wait.h>

#include <fstream>

#include "ca/client.h"
#include "ca/service.h"
#include "http_contract.h"
#include "ca_fixture.h"
#include "net/http.h"
#include "net/process.h"

namespace zf::test {
namespace {

struct CommandResult {
  int exit_code;
  std::string output;
};

// Runs the zf binary with `args`; captures stdout+stderr.
CommandResult run_zf(const std::vector<std::string>& args, const std::filesystem::path& dir) {
  std::string cmd = ZF_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " > '" + (dir / "cmd.out").string() + "' 2>&1";
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir / "cmd.out")};
}

class CaServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string port_file = (world.tmp.path() / "ca.port").string();
    auto child = net::Child::spawn({ZF_BINARY, "ca", "serve", "--dir", world.ca_dir, "--port", "0", "--port-file", port_file},
                                   (world.tmp.path() / "ca.log").string());
    ASSERT_TRUE(child);
    server = std::move(*child);
    auto port = net::wait_for_port_file(port_file, server);
    ASSERT_TRUE(port) << port.error().message() << slurp(world.tmp.path() / "ca.log");
    url = "https://127.0.0.1:" + std::to_string(*port);
    admin = std::make_unique<ca::CaClient>(*ca::CaClient::connect(url, world.root(), world.admin_token()));
  }

  // Sends a raw body, returns (status, parsed problem).
  std::pair<int, Json> raw_post(const std::string& path, const std::string& body, const std::string& token = {}) {
    httplib::Client c(url);
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, world.root().get());
    c.set_ca_cert_store(store);
    c.enable_server_certificate_verification(true);
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    auto res = c.Post(path, h, body, "application/json");
    if (!res) return {0, Json()};
    EXPECT_NE(res->get_header_value("Content-Type").find("json"), std::string::npos);
    auto j = parse_json_strict(res->body);
    return {res->status, j ? *j : Json()};
  }

  std::size_t issued_count() {
    auto c = net::HttpsClient::connect(url, world.root(), net::ServerId::ca(world.root().subject_cn()));
    c->set_bearer(world.admin_token());
    auto j = c->get_json("/v1/certificates");
    EXPECT_TRUE(j) << j.error().message();
    return j ? (*j)["certificates"].size() : 0;
  }

  CaWorld world;
  net::Child server;
  std::string url;
  std::unique_ptr<ca::CaClient> admin;
};

TEST_F(CaServiceTest, EveryRouteIsDescribedInTheOpenApiFileAndAnswersAsDescribed) {
  auto c = net::HttpsClient::connect(url, world.root(), net::ServerId::ca(world.root().subject_cn()));
  c->set_bearer(world.admin_token());
  auto issued = c->get_json("/v1/certificates");
  ASSERT_TRUE(issued && !(*issued)["certificates"].empty());
  std::string serial = (*issued)["certificates"][0]["serial"];
  check_routes_against_openapi(ca::routes(nullptr), docs_file("openapi.yaml"), url, world.root(),
                               world.admin_token(),
                               {{"/v1/certificates/{serial}", "/v1/certificates/" + serial},
                                {"/v1/secure-elements/{id}", "/v1/secure-elements/se-0001"},
                                // an unknown serial: the check must not revoke a real one
                                {"/v1/certificates/{serial}/revoke", "/v1/certificates/ffff/revoke"}});
  EXPECT_FALSE((*c->get_json("/v1/certificates/" + serial))["revoked"].get<bool>());
}

TEST_F(CaServiceTest, EveryOpenApiFileIsValid) {
  for (const auto& entry : std::filesystem::directory_iterator(ZF_DOCS_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    auto api = read_openapi(entry.path().string());
    EXPECT_TRUE(api.ok) << entry.path() << ": " << api.message;
    EXPECT_FALSE(api.paths.empty()) << entry.path();
  }
  // The validator really validates: a file that is not OpenAPI is refused.
  auto bogus = world.tmp.path() / "bogus.yaml";
  std::ofstream(bogus) << "openapi: 3.1.0\ninfo: {title: x}\npaths: {/v1/x: {get: {responses: {200: {description: [}}}}}\n";
  EXPECT_FALSE(read_openapi(bogus.string()).ok);
}

TEST_F(CaServiceTest, ServesRootOverTlsIssuedByItself) {
  auto c = net::HttpsClient::connect(url, world.root(), net::ServerId::ca(world.root().subject_cn()));
  auto j = c->get_json("/v1/root");
  ASSERT_TRUE(j) << j.error().message();
  EXPECT_EQ((*j)["certificate"], world.root().pem());
}

TEST_F(CaServiceTest, ClientTrustingAnotherRootRefusesTheServer) {
  PrivateKey k = *PrivateKey::generate();
  IssueParams p;
  p.common_name = "Other Root";
  p.not_before = std::time(nullptr) - 60;
  p.not_after = p.not_before + 86400;
  p.serial = new_serial();
  auto other = make_self_signed_ca(k, p);
  auto c = net::HttpsClient::connect(url, *other, net::ServerId::ca("Other Root"));
  auto j = c->get_json("/v1/root");
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code, Errc::cert_untrusted) << j.error().message();
  EXPECT_EQ(j.error().field, "tls");
}

TEST_F(CaServiceTest, EnrollsAnSeEndToEndOverHttps) {
  auto ra_token = admin->add_registration_authority("bank-a");
  ASSERT_TRUE(ra_token) << ra_token.error().message();
  auto ra = ca::CaClient::connect(url, world.root(), *ra_token);
  auto code = ra->enrollment_code("alice", 600);
  ASSERT_TRUE(code) << code.error().message();
  auto dev = ca::make_device(world.mfr_dir, "se-0001");
  PrivateKey se_key = *PrivateKey::generate();
  KeySigner signer(dev->key);
  auto att = make_attestation(signer, dev->chain, se_key.public_key());
  auto anon = ca::CaClient::connect(url, world.root());
  auto cert = anon->request_certificate("secure-element", *make_csr_pem(se_key, {"se-0001", "alice"}), *att, *code);
  ASSERT_TRUE(cert) << cert.error().message();
  EXPECT_EQ(cert->user_id(), "alice");
  auto looked_up = anon->lookup_serial(cert->serial_hex());
  ASSERT_TRUE(looked_up);
  EXPECT_EQ((*looked_up)["role"], "secure-element");
  EXPECT_EQ((*looked_up)["revoked"], false);

  // Reusing the code over the wire: a named error, nothing stored.
  std::size_t before = issued_count();
  auto again = anon->request_certificate("secure-element", *make_csr_pem(se_key, {"se-0001", "alice"}), *att, *code);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::enrollment_code_used);
  EXPECT_EQ(issued_count(), before);
}

TEST_F(CaServiceTest, BadRequestsGetNamedProblemsAndStoreNothing) {
  std::size_t before = issued_count();
  std::string token = world.admin_token();
  PrivateKey k = *PrivateKey::generate();
  std::string csr = *make_csr_pem(k, {"bank-a", ""});

  auto [s1, p1] = raw_post("/v1/certificates", "{not json", token);
  EXPECT_EQ(s1, 400);
  EXPECT_EQ(p1["code"], "malformed_json");

  auto [s2, p2] = raw_post("/v1/certificates", R"({"role":"custody","role":"registry","csr":"x"})", token);
  EXPECT_EQ(s2, 400);
  EXPECT_EQ(p2["code"], "duplicate_key");

  auto [s3, p3] = raw_post("/v1/certificates", std::string(100 * 1024, ' ') + "{}", token);
  EXPECT_EQ(s3, 413);
  EXPECT_EQ(p3["code"], "too_large");

  auto [s4, p4] = raw_post("/v1/certificates", dump_json(Json{{"role", "custody"}, {"csr", csr}, {"admin", true}}), token);
  EXPECT_EQ(s4, 400);
  EXPECT_EQ(p4["code"], "unknown_field");
  EXPECT_EQ(p4["field"], "admin");

  auto [s5, p5] = raw_post("/v1/certificates", dump_json(Json{{"role", "custody"}, {"csr", csr}}));
  EXPECT_EQ(s5, 401);
  EXPECT_EQ(p5["code"], "unauthorized");

  auto [s6, p6] = raw_post("/v1/certificates", dump_json(Json{{"role", "custody"}, {"csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}}), token);
  EXPECT_EQ(s6, 400);
  EXPECT_EQ(p6["code"], "csr_malformed");

  auto [s7, p7] = raw_post("/v1/certificates", dump_json(Json{{"role", 7}, {"csr", csr}}), token);
  EXPECT_EQ(s7, 400);
  EXPECT_EQ(p7["code"], "bad_field");
  EXPECT_EQ(p7["field"], "role");

  auto [s8, p8] = raw_post("/v1/enrollment-codes", dump_json(Json{{"user_id", "alice"}}), "wrong-token");
  EXPECT_EQ(s8, 401);
  EXPECT_EQ(p8["code"], "unauthorized");

  auto [s9, p9] = raw_post("/v1/nowhere", "{}");
  EXPECT_EQ(s9, 404);
  EXPECT_EQ(p9["code"], "not_found");

  auto [s10, p10] = raw_post("/v1/certificates", dump_json(Json{{"role", "secure-element"}, {"csr", *make_csr_pem(k, {"se-1", "bob"})}, {"enrollment_code", "x"}}));
  EXPECT_EQ(s10, 403);
  EXPECT_EQ(p10["code"], "attestation_missing");

  EXPECT_EQ(issued_count(), before);
}

TEST_F(CaServiceTest, RevocationIsPublishedInTheCrl) {
  PrivateKey k = *PrivateKey::generate();
  auto cert = admin->request_certificate("registry", *make_csr_pem(k, {"registry-1", ""}));
  ASSERT_TRUE(cert) << cert.error().message();
  auto anon = ca::CaClient::connect(url, world.root());
  EXPECT_EQ(anon->revoke(cert->serial_hex(), "x").error().code, Errc::unauthorized);
  ASSERT_TRUE(admin->revoke(cert->serial_hex(), "keyCompromise"));
  auto crl = anon->crl();
  ASSERT_TRUE(crl) << crl.error().message();
  EXPECT_GT(crl->next_update(), std::time(nullptr));
  CertVerifier v(world.root());
  v.set_crl(*crl);
  EXPECT_EQ(v.verify({*cert}, Role::registry).error().code, Errc::cert_revoked);
  EXPECT_EQ((*anon->lookup_serial(cert->serial_hex()))["revoked"], true);
}

TEST_F(CaServiceTest, CommandLineEnrollsAnSe) {
  const auto& dir = world.tmp.path();
  std::string root = (std::filesystem::path(world.ca_dir) / "root.pem").string();
  std::string admin_file = (std::filesystem::path(world.ca_dir) / "admin.token").string();
  auto ra = run_zf({"ca", "add-ra", "--dir", world.ca_dir, "--name", "bank-b"}, dir);
  ASSERT_EQ(ra.exit_code, 0) << ra.output;
  std::ofstream((dir / "ra.token").string()) << ra.output;
  ASSERT_EQ(run_zf({"manufacturer", "device", "--dir", world.mfr_dir, "--se-id", "se-cli", "--out", (dir / "dev").string()}, dir).exit_code, 0);
  auto code = run_zf({"ca", "enroll-code", "--url", url, "--root", root, "--token-file", (dir / "ra.token").string(), "--user", "carol"}, dir);
  ASSERT_EQ(code.exit_code, 0) << code.output;
  std::string code_text = code.output.substr(0, code.output.find('\n'));
  std::vector<std::string> req = {"ca", "request", "--url", url, "--root", root, "--role", "secure-element",
                                  "--user", "carol", "--device", (dir / "dev").string(), "--enrollment-code", code_text,
                                  "--out", (dir / "se").string()};
  auto ok = run_zf(req, dir);
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  auto cert = Certificate::from_pem(slurp(dir / "se.pem"));
  ASSERT_TRUE(cert);
  EXPECT_EQ(cert->subject_cn(), "se-cli");
  EXPECT_EQ(cert->user_id(), "carol");
  auto again = run_zf(req, dir);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("enrollment_code_used"), std::string::npos) << again.output;
  auto revoke = run_zf({"ca", "revoke", "--url", url, "--root", root, "--token-file", admin_file, "--serial", cert->serial_hex()}, dir);
  EXPECT_EQ(revoke.exit_code, 0) << revoke.output;
  auto crl = run_zf({"ca", "crl", "--url", url, "--root", root, "--out", (dir / "crl.pem").string()}, dir);
  ASSERT_EQ(crl.exit_code, 0) << crl.output;
  CertVerifier v(world.root());
  v.set_crl(*Crl::from_pem(slurp(dir / "crl.pem")));
  EXPECT_EQ(v.verify({*cert}, Role::secure_element).error().code, Errc::cert_revoked);
}

TEST_F(CaServiceTest, StopsCleanlyOnSigterm) {
  int status = server.stop();
  EXPECT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace zf::test
