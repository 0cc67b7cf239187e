// The registry as a real process: `zf registry init` against a running
// `zf ca serve`, `zf registry serve` on a loopback port 0, claims over HTTPS
// from threads and from separate `zf registry claim` processes.
#include <barrier>
#include <thread>

#include "http_contract.h"
#include "registry/service.h"
#include "registry_process.h"

namespace zf::test {
namespace {

using registry::RecordStatus;

constexpr const char* kRegistry = RegistryProcesses::kRegistryId;

class RegistryServiceTest : public ::testing::Test, protected RegistryProcesses {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(start_ca_and_init_registry());
    ASSERT_NO_FATAL_FAILURE(start_registry());
    bank_a = bank("bank-a");
    bank_b = bank("bank-b");
  }

  httplib::Client raw_client() {
    httplib::Client c(reg_url);
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, world.root().get());
    c.set_ca_cert_store(store);
    c.enable_server_certificate_verification(true);
    return c;
  }
  // Sends a raw request; returns (status, parsed body). Errors must be problem+json.
  std::pair<int, Json> decode(const httplib::Result& res) {
    if (!res) return {0, Json()};
    if (res->status >= 400) {
      EXPECT_NE(res->get_header_value("Content-Type").find("application/problem+json"),
                std::string::npos);
    }
    auto j = parse_json_strict(res->body, {1 << 20, 16});
    return {res->status, j ? *j : Json()};
  }
  std::pair<int, Json> raw_post(const std::string& path, const std::string& body,
                                const std::string& token = {}) {
    auto c = raw_client();
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return decode(c.Post(path, h, body, "application/json"));
  }
  std::pair<int, Json> raw_get(const std::string& path, const std::string& token = {}) {
    auto c = raw_client();
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return decode(c.Get(path, h));
  }

  std::size_t alert_count() {
    auto a = admin().alerts();
    EXPECT_TRUE(a) << a.error().message();
    return a ? a->size() : 0;
  }

  Processor bank_a, bank_b;
};

TEST_F(RegistryServiceTest, EveryRouteIsDescribedInTheOpenApiFileAndAnswersAsDescribed) {
  check_routes_against_openapi(registry::routes(nullptr, nullptr),
                               docs_file("registry-openapi.yaml"), reg_url, world.root(),
                               reg_token(), {{"/v1/records/{doc_id}", "/v1/records/se-x:1"}});
  EXPECT_EQ(alert_count(), 0u);
}

TEST_F(RegistryServiceTest, ClaimQueryAndInfoOverHttps) {
  auto client = anonymous();
  auto info = client.info();
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->registry_id, kRegistry);
  EXPECT_TRUE(info->crl_valid);
  EXPECT_TRUE(info->certificate.has_role(Role::registry));
  EXPECT_EQ(info->certificate.subject_cn(), kRegistry);

  auto f = bank_a.fields("se-x:1", "receipt", "se-x", 1, "deposit.note");
  auto rec = client.claim(bank_a.claim(f));
  ASSERT_TRUE(rec) << rec.error().message();
  auto r = open(*rec);
  EXPECT_EQ(r.status, RecordStatus::claimed);
  EXPECT_TRUE(r.won_by("bank-a", f.result_digest));
  EXPECT_EQ(r.signer.serial_hex(), info->certificate.serial_hex());
  auto q = admin().query("se-x:1");
  ASSERT_TRUE(q) << q.error().message();
  EXPECT_EQ(*q, *rec);

  // claim_and_open: the processor's one-call path.
  CertVerifier v(world.root());
  auto lost = client.claim_and_open(bank_b.claim(bank_b.fields("se-x:1", "other")),
                                    bank_b.fields("se-x:1", "other"), v, kRegistry);
  ASSERT_TRUE(lost) << lost.error().message();
  EXPECT_EQ(lost->status, RecordStatus::already_processed);
  EXPECT_EQ(lost->processor, "bank-a");
  auto retry = client.claim(bank_a.claim(f));
  ASSERT_TRUE(retry);
  EXPECT_EQ(*retry, *rec);
  auto mismatch = client.claim_and_open(bank_b.claim("se-x:2"), bank_b.fields("se-x:3"), v);
  EXPECT_EQ(mismatch.error().code, Errc::receipt_mismatch);

  EXPECT_EQ(admin().query("unknown").error().code, Errc::not_found);
  EXPECT_EQ(admin().query("bad/id").error().code, Errc::bad_field);
}

TEST_F(RegistryServiceTest, BadInputGetsNamedProblemsAndStoresNothing) {
  auto client = anonymous();
  ASSERT_TRUE(client.claim(bank_a.claim("held")));
  std::string good = bank_a.claim("new-1");
  EXPECT_EQ(client.claim(tamper_payload(good)).error().code, Errc::bad_signature);
  EXPECT_EQ(client.claim("garbage").error().code, Errc::malformed_json);
  EXPECT_EQ(client.claim(rogue("bank-a").claim("new-1")).error().code, Errc::cert_untrusted);
  Processor reg_key;
  reg_key.id = kRegistry;
  reg_key.key = std::make_shared<PrivateKey>(*PrivateKey::load_pem_file(reg_dir + "/registry.key"));
  reg_key.chain = *certificates_from_pem(slurp(reg_dir + "/registry.pem"));
  EXPECT_EQ(client.claim(reg_key.claim("new-1")).error().code, Errc::cert_wrong_role);
  auto as_b = bank_a.fields("new-1");
  as_b.processor = "bank-b";
  EXPECT_EQ(client.claim(bank_a.claim(as_b)).error().code, Errc::not_owner);
  auto [sr, pr] = raw_post("/v1/claims", dump_json(Json{{"claim", reg_key.claim("new-1")}}));
  EXPECT_EQ(sr, 403);
  EXPECT_EQ(pr["code"], "cert_wrong_role");

  // Bodies: malformed, oversize, wrong shape, unknown fields, duplicate keys.
  auto [s1, p1] = raw_post("/v1/claims", "{\"claim\": ");
  EXPECT_EQ(s1, 400);
  EXPECT_EQ(p1["code"], "malformed_json");
  auto [s2, p2] = raw_post("/v1/claims", std::string(net::kMaxBodyBytes + 1024, ' ') + "{}");
  EXPECT_EQ(s2, 413);
  EXPECT_EQ(p2["code"], "too_large");
  auto [s2b, p2b] =
      raw_post("/v1/claims", dump_json(Json{{"claim", std::string(net::kMaxBodyBytes + 10, 'a')}}));
  EXPECT_EQ(s2b, 413);
  EXPECT_EQ(p2b["code"], "too_large");
  auto [s3, p3] = raw_post("/v1/claims", dump_json(Json{{"claim", good}, {"also", 1}}));
  EXPECT_EQ(s3, 400);
  EXPECT_EQ(p3["code"], "unknown_field");
  auto [s4, p4] = raw_post("/v1/claims", dump_json(Json{{"claim", 42}}));
  EXPECT_EQ(s4, 400);
  EXPECT_EQ(p4["code"], "bad_field");
  auto [s5, p5] = raw_post("/v1/claims", R"({"claim":"a","claim":"b"})");
  EXPECT_EQ(s5, 400);
  EXPECT_EQ(p5["code"], "duplicate_key");
  auto [s6, p6] = raw_post("/v1/claims", "[]");
  EXPECT_EQ(s6, 400);
  auto [s7, p7] = raw_post("/v1/claims", "{}");
  EXPECT_EQ(s7, 400);
  EXPECT_EQ(p7["code"], "missing_field");

  // Records: not public; unknown, malformed and oversize ids; fields that do not belong.
  auto query = [&](const Json& body, const std::string& token) {
    return raw_post("/v1/records/query", dump_json(body), token);
  };
  auto [g0, q0] = query(Json{{"doc_id", "held"}}, "");
  EXPECT_EQ(g0, 401);
  EXPECT_EQ(q0["code"], "unauthorized");
  auto [g1, q1] = query(Json{{"doc_id", "unknown-id"}}, reg_token());
  EXPECT_EQ(g1, 404);
  EXPECT_EQ(q1["code"], "not_found");
  for (const std::string& bad : std::vector<std::string>{"", "a b", "a/b", std::string(129, 'a')}) {
    auto [g, q] = query(Json{{"doc_id", bad}}, reg_token());
    EXPECT_EQ(g, 400) << bad;
    EXPECT_EQ(q["code"], "bad_field") << bad;
  }
  auto [g3, q3] = query(Json{{"doc_id", "held"}, {"as", "admin"}}, reg_token());
  EXPECT_EQ(g3, 400);
  EXPECT_EQ(q3["code"], "unknown_field");
  auto [g4, q4] = query(Json{{"doc_id", "held"}, {"document", "not.a.jws"}}, "");
  EXPECT_EQ(g4, 400) << q4.dump();
  auto [g2, q2] = query(Json{{"doc_id", "held"}}, reg_token());
  EXPECT_EQ(g2, 200);
  EXPECT_EQ(open(q2["record"]).doc_id, "held");
  EXPECT_EQ(raw_get("/v1/records/held").first, 404) << "the public record route is gone";

  // Alerts are for the admin.
  auto [a1, b1] = raw_get("/v1/alerts");
  EXPECT_EQ(a1, 401);
  EXPECT_EQ(b1["code"], "unauthorized");
  auto [a2, b2] = raw_get("/v1/alerts", "not-the-token");
  EXPECT_EQ(a2, 401);
  EXPECT_EQ(anonymous().alerts().error().code, Errc::unauthorized);
  auto [a3, b3] = raw_get("/v1/alerts?after=-1", reg_token());
  EXPECT_EQ(a3, 400);
  EXPECT_EQ(b3["field"], "after");
  auto [a4, b4] = raw_get("/v1/alerts?limit=5000", reg_token());
  EXPECT_EQ(a4, 400);
  EXPECT_EQ(anonymous().refresh_crl().error().code, Errc::unauthorized);

  // Nothing of this was stored.
  EXPECT_EQ(admin().query("new-1").error().code, Errc::not_found);
  EXPECT_EQ(alert_count(), 0u);
}

TEST_F(RegistryServiceTest, AReusedSeqOverHttpsIsRefusedAndListedForTheAdmin) {
  auto client = anonymous();
  Processor se = this->se("se-pay", "carol");
  Processor payee = this->se("se-recv", "dave");
  // The payee's SE claims se-pay's note through its terminal; a bank sees a
  // clone of se-pay's seq 5 in another document.
  ASSERT_EQ(open(*client.claim(payee.claim(payee.fields("se-pay:5", "ok", "se-pay", 5, "payment.note"))))
                .status,
            RecordStatus::claimed);
  auto clone = bank_b.fields("se-pay:5", "another-note", "se-pay", 5, "deposit.note");
  auto r = client.claim(bank_b.claim(clone));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(open(*r).status, RecordStatus::seq_reused);
  auto alerts = admin().alerts();
  ASSERT_TRUE(alerts) << alerts.error().message();
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ(alerts->front().se_id, "se-pay");
  EXPECT_EQ(alerts->front().seq, 5);
  EXPECT_EQ(alerts->front().first_processor, "se-recv");
  EXPECT_EQ(alerts->front().second_processor, "bank-b");
  EXPECT_EQ(alerts->front().second_doc_id, "se-pay:5");
  EXPECT_EQ(admin().alerts(alerts->front().id)->size(), 0u);
  // The CA can now revoke that SE; the registry then refuses its claims.
  ASSERT_TRUE(ca_admin().revoke(se.cert().serial_hex(), "cloned"));
  ASSERT_TRUE(admin().refresh_crl());
  EXPECT_EQ(client.claim(se.claim("se-pay:6")).error().code, Errc::cert_revoked);
  EXPECT_TRUE(client.claim(bank_a.claim("unaffected")));

  auto cli = run_zf(
      {"registry", "alerts", "--url", reg_url, "--root", root_file, "--token-file", reg_token_file},
      world.tmp.path());
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find("\"se_id\":\"se-pay\""), std::string::npos) << cli.output;
  EXPECT_NE(cli.output.find("\"second_processor\":\"bank-b\""), std::string::npos) << cli.output;
  auto no_token =
      run_zf({"registry", "alerts", "--url", reg_url, "--root", root_file}, world.tmp.path());
  EXPECT_EQ(no_token.exit_code, 2);
  EXPECT_NE(no_token.output.find("unauthorized"), std::string::npos) << no_token.output;
}

TEST_F(RegistryServiceTest, WithoutACrlClaimsAreUnavailableAndTheCachedOneServes) {
  ca.stop();
  reg.stop();
  // Restarted without the CA: the cached CRL (next update a day ahead) still serves.
  ASSERT_NO_FATAL_FAILURE(start_registry());
  EXPECT_TRUE(anonymous().claim(bank_a.claim("c-1")));
  // Without the cache and without the CA nothing is recorded: retryable 503.
  reg.stop();
  std::filesystem::remove(reg_dir + "/crl.pem");
  ASSERT_NO_FATAL_FAILURE(start_registry());
  EXPECT_FALSE(anonymous().info()->crl_valid);
  std::string jws = bank_a.claim("c-2");
  EXPECT_EQ(anonymous().claim(jws).error().code, Errc::unavailable);
  auto [status, problem] = raw_post("/v1/claims", dump_json(Json{{"claim", jws}}));
  EXPECT_EQ(status, 503);
  EXPECT_EQ(problem["code"], "unavailable");
  EXPECT_EQ(admin().query("c-2").error().code, Errc::not_found);
  EXPECT_TRUE(admin().query("c-1")) << "queries need no CRL";
  // The CA comes back: the same claim goes through.
  ASSERT_NO_FATAL_FAILURE(start_ca());
  reg.stop();
  ASSERT_NO_FATAL_FAILURE(start_registry({"--ca-url", ca_url}));
  auto ok = anonymous().claim(jws);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(open(*ok).status, RecordStatus::claimed);
}

// Three processors, each with its own HTTPS connection, race on the same
// document id 50 times: exactly one wins each round, the others are told who.
TEST_F(RegistryServiceTest, RacingClientsOverHttpsWinEachDocumentOnce) {
  constexpr int kRounds = 50;
  Processor bank_c = bank("bank-c");
  std::vector<Processor*> procs = {&bank_a, &bank_b, &bank_c};
  const int n = static_cast<int>(procs.size());
  std::vector<std::vector<std::string>> claims(kRounds);
  for (int round = 0; round < kRounds; ++round)
    for (int t = 0; t < n; ++t)
      claims[round].push_back(procs[t]->claim("net-race-" + std::to_string(round), procs[t]->id));
  std::vector<std::vector<std::string>> records(kRounds, std::vector<std::string>(n));
  std::barrier sync(n);
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      auto client = anonymous();
      for (int round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();
        auto r = client.claim(claims[round][t]);
        ASSERT_TRUE(r) << r.error().message();
        records[round][t] = *r;
      }
    });
  for (auto& th : threads) th.join();
  auto client = admin();
  for (int round = 0; round < kRounds; ++round) {
    std::string doc = "net-race-" + std::to_string(round);
    auto stored = client.query(doc);
    ASSERT_TRUE(stored);
    std::string winner = open(*stored).processor;
    int claimed = 0;
    for (int t = 0; t < n; ++t) {
      auto r = open(records[round][t]);
      EXPECT_EQ(r.doc_id, doc);
      EXPECT_EQ(r.processor, winner) << "round " << round;
      if (r.status == RecordStatus::claimed) {
        ++claimed;
        EXPECT_EQ(records[round][t], *stored);
        EXPECT_EQ(procs[t]->id, winner);
      } else {
        EXPECT_EQ(r.status, RecordStatus::already_processed);
      }
    }
    EXPECT_EQ(claimed, 1) << "round " << round;
  }
}

// Separate OS processes (`zf registry claim`) race on the same document id.
TEST_F(RegistryServiceTest, RacingProcessesWinEachDocumentOnce) {
  constexpr int kRounds = 8;
  Processor bank_c = bank("bank-c");
  std::vector<Processor*> procs = {&bank_a, &bank_b, &bank_c};
  const auto& dir = world.tmp.path();
  for (int round = 0; round < kRounds; ++round) {
    std::string doc = "proc-race-" + std::to_string(round);
    std::vector<net::Child> children;
    for (std::size_t t = 0; t < procs.size(); ++t) {
      std::string claim_file = (dir / ("claim-" + std::to_string(t))).string();
      std::ofstream(claim_file) << procs[t]->claim(doc, procs[t]->id);
      std::string out = (dir / ("out-" + std::to_string(t))).string();
      std::filesystem::remove(out);
      auto c = net::Child::spawn({ZF_BINARY, "registry", "claim", "--url", reg_url, "--root",
                                  root_file, "--claim-file", claim_file},
                                 out);
      ASSERT_TRUE(c);
      children.push_back(std::move(*c));
    }
    for (auto& c : children) {
      int status = 0;
      ::waitpid(c.pid(), &status, 0);
      c.detach();
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    int claimed = 0;
    std::string winner;
    for (std::size_t t = 0; t < procs.size(); ++t) {
      std::string out = slurp(dir / ("out-" + std::to_string(t)));
      auto j = parse_json_strict(out);
      ASSERT_TRUE(j) << out;
      EXPECT_EQ((*j)["doc_id"], doc);
      if ((*j)["status"] == "claimed") {
        ++claimed;
        EXPECT_EQ((*j)["processor"], procs[t]->id);
      } else {
        EXPECT_EQ((*j)["status"], "already_processed") << out;
      }
      if (winner.empty()) winner = (*j)["processor"];
      EXPECT_EQ((*j)["processor"], winner) << "everyone is told the same winner";
    }
    EXPECT_EQ(claimed, 1) << "round " << round;
  }
}

// Over HTTPS: who may read a record (docs/registry-api.md); the admin, the
// holder of the document (also from the command line), a party's signed request.
TEST_F(RegistryServiceTest, RecordsOverHttpsAreReadOnlyByTheirParties) {
  Processor payer = this->se("se-payer", "paula");
  Processor payee = this->se("se-payee", "pete");
  std::string note = payer.note(4);
  CertVerifier v(world.root());
  auto opened = open_signed_document(note, v, Role::secure_element);
  ASSERT_TRUE(opened) << opened.error().message();
  ASSERT_TRUE(anonymous().claim(payee.claim(registry::claim_fields_for(*opened, "se-payee"))));
  auto by_admin = admin().query("se-payer:4");
  ASSERT_TRUE(by_admin) << by_admin.error().message();
  EXPECT_EQ(anonymous().query("se-payer:4").error().code, Errc::unauthorized);
  EXPECT_EQ(*anonymous().query_with_document("se-payer:4", note), *by_admin);
  EXPECT_EQ(*anonymous().query_signed("se-payer:4", payer.record_query("se-payer:4")), *by_admin);
  EXPECT_EQ(anonymous().query_signed("se-payer:4", bank_a.record_query("se-payer:4")).error().code,
            Errc::forbidden);
  std::string note_file = (world.tmp.path() / "note.jws").string();
  std::ofstream(note_file) << note;
  auto cli = run_zf({"registry", "query", "--url", reg_url, "--root", root_file, "--document", note_file,
                     "se-payer:4"},
                    world.tmp.path());
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find("\"processor\":\"se-payee\""), std::string::npos) << cli.output;
}

TEST_F(RegistryServiceTest, CommandLineQueriesAndShowsTheRegistry) {
  const auto& dir = world.tmp.path();
  ASSERT_TRUE(
      anonymous().claim(bank_a.claim(bank_a.fields("se-q:3", "x", "se-q", 3, "deposit.note"))));
  // Records are not public: without the admin token (or the document) the answer is refused.
  auto anon = run_zf({"registry", "query", "--url", reg_url, "--root", root_file, "se-q:3"}, dir);
  EXPECT_EQ(anon.exit_code, 2) << anon.output;
  EXPECT_NE(anon.output.find("unauthorized"), std::string::npos) << anon.output;
  auto q = run_zf(
      {"registry", "query", "--url", reg_url, "--root", root_file, "--token-file", reg_token_file, "se-q:3"}, dir);
  ASSERT_EQ(q.exit_code, 0) << q.output;
  EXPECT_NE(q.output.find("\"status\":\"claimed\""), std::string::npos) << q.output;
  EXPECT_NE(q.output.find("\"processor\":\"bank-a\""), std::string::npos) << q.output;
  EXPECT_NE(q.output.find("\"doc_seq\":3"), std::string::npos) << q.output;
  auto missing = run_zf(
      {"registry", "query", "--url", reg_url, "--root", root_file, "--token-file", reg_token_file, "nope"}, dir);
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("not_found"), std::string::npos) << missing.output;
  auto bad = run_zf(
      {"registry", "query", "--url", reg_url, "--root", root_file, "--token-file", reg_token_file, "a b"}, dir);
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  auto info = run_zf({"registry", "info", "--url", reg_url, "--root", root_file}, dir);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("registry registry-1 (CRL current)"), std::string::npos)
      << info.output;
  std::string claim_file = (dir / "claim.jws").string();
  std::ofstream(claim_file) << bank_b.claim("cli-claim");
  auto c = run_zf(
      {"registry", "claim", "--url", reg_url, "--root", root_file, "--claim-file", claim_file},
      dir);
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("\"status\":\"claimed\""), std::string::npos) << c.output;
  // A second init on the same directory is refused.
  auto reinit = run_zf({"registry", "init", "--dir", reg_dir, "--id", kRegistry, "--ca-url", ca_url,
                        "--ca-root", root_file, "--ca-token-file", ca_token_file},
                       dir);
  EXPECT_NE(reinit.exit_code, 0);
  EXPECT_NE(reinit.output.find("conflict"), std::string::npos) << reinit.output;
  // Key files are private.
  for (const char* f : {"registry.key", "tls.key", "admin.token"})
    EXPECT_EQ(
        std::filesystem::status(reg_dir + "/" + f).permissions() & std::filesystem::perms::all,
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << f;
}

}  // namespace
}  // namespace zf::test
