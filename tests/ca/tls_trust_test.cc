// What our HTTPS clients trust (DESIGN.md §2): exactly the configured root, and
// of the servers it certified only the service the client means to reach. A
// server with a certificate from any other CA, even one the machine's trust
// store holds, or with our certificate for another service, is refused in the
// handshake: cert_untrusted (field "tls"), before a byte of the request is sent.
// The servers here are real HTTPS servers on loopback, port 0.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "bank/client.h"
#include "ca/client.h"
#include "ca_fixture.h"
#include "net/http.h"
#include "registry/client.h"

namespace zf::test {
namespace {

using ca::Caller;

// An HTTPS server on host:0 with `cert` that counts every request it receives.
class CountingServer {
 public:
  CountingServer(const Certificate& cert, const PrivateKey& key, const std::string& host = "127.0.0.1")
      : server_(cert, key) {
    auto count = [this](const httplib::Request&, httplib::Response& res) {
      ++requests_;
      net::write_json(res, Json{{"bank_id", "bank-a"}});
    };
    net::Routes routes;
    routes.get("/v1/info", count).post("/v1/topup", count).post("/v1/claims", count);
    server_.serve_routes(routes);
    auto port = server_.bind(host, 0);
    EXPECT_TRUE(port) << port.error().message();
    url_ = "https://" + host + ":" + std::to_string(port.value_or(0));
    thread_ = std::thread([this] { server_.run(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~CountingServer() {
    server_.stop();
    thread_.join();
  }
  const std::string& url() const { return url_; }
  int requests() const { return requests_.load(); }

 private:
  net::HttpsServer server_;
  std::string url_;
  std::thread thread_;
  std::atomic<int> requests_{0};
};

// Someone else's CA, and a TLS certificate from it that copies everything ours
// would carry for bank-a: localhost, 127.0.0.1, our tls-server role, our name.
struct ForeignCa {
  PrivateKey root_key = *PrivateKey::generate();
  Certificate root{nullptr};
  PrivateKey tls_key = *PrivateKey::generate();
  Certificate tls{nullptr};

  ForeignCa() {
    IssueParams rp;
    rp.common_name = "Some Public Root CA";
    rp.not_before = std::time(nullptr) - 60;
    rp.not_after = rp.not_before + 86400;
    rp.serial = new_serial();
    rp.is_ca = true;
    root = *make_self_signed_ca(root_key, rp);
    IssueParams tp;
    tp.common_name = "bank-a";
    tp.roles = {Role::tls_server};
    tp.dns_names = {"localhost"};
    tp.ip_addrs = {"127.0.0.1"};
    tp.uris = {service_uri("bank", "bank-a")};
    tp.not_before = rp.not_before;
    tp.not_after = rp.not_after;
    tp.serial = new_serial();
    tls = *issue_certificate(root, root_key, tls_key.public_key(), tp);
  }
};

// Sets an environment variable for the test's duration.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// OpenSSL's default verify paths honour SSL_CERT_FILE and SSL_CERT_DIR: pointing
// them at a bundle holding a foreign CA stands for a machine whose trust store
// holds it, without touching the machine's store.
TEST(TlsTrust, ForeignCaInTheDefaultTrustStoreIsRefused) {
  CaWorld world;
  ForeignCa foreign;
  std::string bundle = (world.tmp.path() / "public-roots.pem").string();
  std::ofstream(bundle) << foreign.root.pem();
  ScopedEnv file("SSL_CERT_FILE", bundle);
  ScopedEnv dir("SSL_CERT_DIR", world.tmp.path().string());
  CountingServer server(foreign.tls, foreign.tls_key);

  // Control: a client that uses the default verify paths accepts the server,
  // so the refusal below is about what we trust, not about a broken server.
  httplib::Client plain(server.url());
  plain.enable_server_certificate_verification(true);
  auto res = plain.Get("/v1/info");
  ASSERT_TRUE(res) << "a default-paths client should trust the foreign CA: "
                   << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  ASSERT_EQ(server.requests(), 1);

  // Ours trust only our root: refused before the signed request leaves.
  auto bank = bank::BankClient::connect(server.url(), world.root(), "bank-a", {});
  ASSERT_TRUE(bank);
  auto r = bank->topup("eyJhbGciOiJFUzI1NiJ9.e30.c2ln");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::cert_untrusted) << r.error().message();
  EXPECT_EQ(r.error().field, "tls");
  EXPECT_NE(r.error().detail.find("bank bank-a"), std::string::npos) << r.error().detail;
  auto ca = ca::CaClient::connect(server.url(), world.root());
  ASSERT_TRUE(ca);
  auto crl = ca->crl();
  ASSERT_FALSE(crl);
  EXPECT_EQ(crl.error().code, Errc::cert_untrusted) << crl.error().message();
  EXPECT_EQ(server.requests(), 1) << "nothing reached the foreign server";
}

// The CA names the service a TLS certificate serves from what it certified
// the same id for, never from the request.
TEST(TlsTrust, CaNamesTheServiceInEachTlsCertificate) {
  CaWorld world;
  auto ca = ca::Authority::open(world.ca_dir);
  ASSERT_TRUE(ca);
  auto issue = [&](const std::string& role, const std::string& cn) {
    auto key = *PrivateKey::generate();
    auto r = (*ca)->issue(Caller::admin, ca::CertRequest{role, *make_csr_pem(key, {cn, ""}), {}, {}, 0});
    EXPECT_TRUE(r) << role << " " << cn << ": " << r.error().message();
    return r ? r->cert : Certificate(nullptr);
  };
  auto custody = issue("custody", "bank-a");
  issue("registry", "registry-1");
  EXPECT_EQ(issue("tls-server", "bank-a").san_uris(), std::vector<std::string>{"urn:zhuanfu:bank:bank-a"});
  EXPECT_EQ(issue("tls-server", "registry-1").san_uris(),
            std::vector<std::string>{"urn:zhuanfu:registry:registry-1"});
  EXPECT_TRUE(issue("tls-server", "stranger").san_uris().empty()) << "no service certified under that id";
  ASSERT_TRUE((*ca)->revoke(Caller::admin, custody.serial_hex(), "keyCompromise"));
  EXPECT_TRUE(issue("tls-server", "bank-a").san_uris().empty()) << "its custody certificate is revoked";

  // The CA's own TLS certificate names the CA by its root's name.
  auto chain = certificates_from_pem(slurp(std::filesystem::path(world.ca_dir) / "tls.pem"));
  ASSERT_TRUE(chain && !chain->empty());
  EXPECT_EQ(chain->front().san_uris(), std::vector<std::string>{"urn:zhuanfu:ca:zhuanfu%20Root%20CA"});
  EXPECT_EQ(world.root().subject_cn(), "zhuanfu Root CA");
}

// Our own certificate for another service, or for our service at another
// address, is refused like a stranger's.
TEST(TlsTrust, ClientsAcceptOnlyTheServiceTheyMeant) {
  CaWorld world;
  auto ca = ca::Authority::open(world.ca_dir);
  ASSERT_TRUE(ca);
  auto key = *PrivateKey::generate();
  ASSERT_TRUE((*ca)->issue(Caller::admin,
                           ca::CertRequest{"registry", *make_csr_pem(key, {"registry-1", ""}), {}, {}, 0}));
  auto tls_key = *PrivateKey::generate();
  auto tls = (*ca)->issue(Caller::admin,
                          ca::CertRequest{"tls-server", *make_csr_pem(tls_key, {"registry-1", ""}), {}, {}, 0});
  ASSERT_TRUE(tls);
  CountingServer registry(tls->cert, tls_key);

  // The registry's endpoint, reached by a client that means bank-a.
  auto bank = bank::BankClient::connect(registry.url(), world.root(), "bank-a", {});
  ASSERT_TRUE(bank);
  auto r = bank->topup("eyJhbGciOiJFUzI1NiJ9.e30.c2ln");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::cert_untrusted) << r.error().message();
  EXPECT_EQ(r.error().field, "tls");
  EXPECT_NE(r.error().detail.find("expected bank bank-a (urn:zhuanfu:bank:bank-a)"), std::string::npos)
      << r.error().detail;
  EXPECT_NE(r.error().detail.find("names urn:zhuanfu:registry:registry-1"), std::string::npos)
      << r.error().detail;
  auto any_bank = bank::BankClient::connect(registry.url(), world.root(), "", {});
  EXPECT_EQ(any_bank->info().error().code, Errc::cert_untrusted) << "a registry is no bank";
  auto other = registry::RegistryClient::connect(registry.url(), world.root(), "registry-2", {});
  EXPECT_EQ(other->claim("x.y.z").error().code, Errc::cert_untrusted) << "another registry's id";
  auto as_ca = ca::CaClient::connect(registry.url(), world.root());
  EXPECT_EQ(as_ca->crl().error().code, Errc::cert_untrusted);
  EXPECT_EQ(registry.requests(), 0) << "nothing was sent to the wrong service";

  // The one it meant, by id or as any registry, is reached.
  auto right = net::HttpsClient::connect(registry.url(), world.root(), net::ServerId::registry("registry-1"));
  auto info = right->get_json("/v1/info");
  EXPECT_TRUE(info) << info.error().message();
  auto any = net::HttpsClient::connect(registry.url(), world.root(), net::ServerId::registry(""));
  EXPECT_TRUE(any->get_json("/v1/info"));
  EXPECT_EQ(registry.requests(), 2);

  // The host is checked too: the certificate names 127.0.0.1 and localhost only.
  CountingServer elsewhere(tls->cert, tls_key, "127.0.0.2");
  auto moved = net::HttpsClient::connect(elsewhere.url(), world.root(), net::ServerId::registry("registry-1"));
  auto m = moved->get_json("/v1/info");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::cert_untrusted) << m.error().message();
  EXPECT_NE(m.error().detail.find("mismatch"), std::string::npos) << m.error().detail;
  EXPECT_EQ(elsewhere.requests(), 0);
}

}  // namespace
}  // namespace zf::test
