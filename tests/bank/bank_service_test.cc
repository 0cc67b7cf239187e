// The bank as a real process: `zf bank init` against a running `zf ca serve`,
// `zf bank serve` on a loopback port 0, top-up and deposit over HTTPS.
#include "bank/service.h"
#include "bank_process.h"
#include "http_contract.h"

namespace zf::test {
namespace {

constexpr const char* kBank = BankProcesses::kBankId;

class BankServiceTest : public ::testing::Test, protected BankProcesses {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(start_ca_and_init_bank());
    ASSERT_NO_FATAL_FAILURE(start_bank());
    alice = enroll("se-alice", "alice");
    bob = enroll("se-bob", "bob");
    auto a = admin();
    ASSERT_TRUE(a.open_account({"alice-cny", "CNY", "alice", std::nullopt}));
    ASSERT_TRUE(a.open_account({"bob-cny", "CNY", "bob", std::nullopt}));
    ASSERT_TRUE(a.cash_in("alice-cny", *Amount::of("CNY", 10000), "counter-1"));
  }
  void TearDown() override {
    if (bank.running()) audit_ok();
  }

  // Sends a raw body; returns (status, parsed body).
  std::pair<int, Json> raw_post(const std::string& path, const std::string& body,
                                const std::string& token = {}) {
    httplib::Client c(bank_url);
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, world.root().get());
    c.set_ca_cert_store(store);
    c.enable_server_certificate_verification(true);
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    auto res = c.Post(path, h, body, "application/json");
    if (!res) return {0, Json()};
    auto j = parse_json_strict(res->body, {1 << 20, 16});
    if (res->status >= 400) {
      EXPECT_NE(res->get_header_value("Content-Type").find("application/problem+json"),
                std::string::npos);
    }
    return {res->status, j ? *j : Json()};
  }

  // Expects `r` to fail with `code`, and Alice's balance and the books to be unchanged.
  template <class T>
  void expect_refused(const Result<T>& r, Errc code, std::int64_t alice_before) {
    // A business refusal of a well-signed request is a signed receipt with its reason.
    bool signed_refusal = false;
    if constexpr (std::is_same_v<T, std::string>) {
      if (r) {
        auto reason = refusal_reason(*r);
        ASSERT_TRUE(reason) << "expected " << errc_name(code) << ", got a receipt";
        EXPECT_EQ(*reason, errc_name(code));
        signed_refusal = true;
      }
    }
    if (!signed_refusal) {
      ASSERT_FALSE(r) << "expected " << errc_name(code);
      EXPECT_EQ(r.error().code, code) << r.error().message();
    }
    EXPECT_EQ(admin_balance("alice-cny"), alice_before);
    audit_ok();
  }

  TestSigner alice, bob;
};

TEST_F(BankServiceTest, TopupAndDepositOverHttps) {
  auto client = anonymous();
  auto info = client.info();
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->bank_id, kBank);
  EXPECT_TRUE(info->crl_valid);
  EXPECT_TRUE(info->custody_certificate.has_role(Role::custody));

  Json req = alice.topup(kBank, "alice-cny", 3000);
  auto receipt = client.topup(alice.sign(req));
  ASSERT_TRUE(receipt) << receipt.error().message();
  CertVerifier v(world.root());
  auto d = open_signed_document(*receipt, v, Role::custody);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->doc.type(), "topup.receipt");
  EXPECT_EQ(d->doc.str("request_id"), req["id"]);
  EXPECT_EQ(d->signers.front().serial_hex(), info->custody_certificate.serial_hex());

  auto dep = client.deposit(bob.sign(bob.deposit(kBank, "bob-cny", 1000)));
  ASSERT_TRUE(dep) << dep.error().message();
  auto dd = open_signed_document(*dep, v, Role::custody);
  ASSERT_TRUE(dd);
  EXPECT_EQ(dd->doc.type(), "deposit.receipt");

  EXPECT_EQ(balance(alice, "alice-cny"), 7000);
  EXPECT_EQ(balance(bob, "bob-cny"), 1000);
  EXPECT_EQ(admin_balance(ledger::outstanding_account_id("CNY")), 2000);
  EXPECT_EQ(admin().account("nobody").error().code, Errc::account_unknown);
  auto audit = audit_ok();
  ASSERT_EQ(audit.currencies.size(), 1u);
  EXPECT_EQ(audit.currencies[0].customer_minor, 8000);
  EXPECT_EQ(audit.currencies[0].ecash_outstanding_minor, 2000);
  EXPECT_EQ(audit.currencies[0].issued_minor, 10000);

  auto st = client.query(alice.sign(alice.query(kBank, "alice-cny")));
  ASSERT_TRUE(st);
  ASSERT_EQ(st->history.size(), 2u);
  EXPECT_EQ(st->history[0].amount_minor, -3000);
}

TEST_F(BankServiceTest, AQueryPresentedTwiceIsReplayed) {
  std::string q = alice.sign(alice.query(kBank, "alice-cny"));
  auto first = anonymous().query(q);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->account.balance_minor, 10000);
  auto [status, problem] = raw_post("/v1/query", dump_json(Json{{"query", q}}));
  EXPECT_EQ(status, 409);
  EXPECT_EQ(problem["code"], "replayed");
  EXPECT_FALSE(problem.contains("account"));
  // Still refused after the bank restarts: the use is in bank.db, not in memory.
  bank.kill9();
  ASSERT_NO_FATAL_FAILURE(start_bank());
  auto after = anonymous().query(q);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errc::replayed);
  // A fresh query from the same SE answers.
  EXPECT_EQ(balance(alice, "alice-cny"), 10000);
}

TEST_F(BankServiceTest, EveryRouteIsDescribedInTheOpenApiFileAndAnswersAsDescribed) {
  check_routes_against_openapi(bank::routes(nullptr, nullptr), docs_file("bank-openapi.yaml"),
                               bank_url, world.root(), bank_token(),
                               {{"/v1/accounts/{id}", "/v1/accounts/alice-cny"}});
  EXPECT_EQ(admin_balance("alice-cny"), 10000);
}

TEST_F(BankServiceTest, ExactlyOnceOverHttps) {
  auto client = anonymous();
  Json req = alice.topup(kBank, "alice-cny", 2500);
  std::string jws = alice.sign(req);
  auto first = client.topup(jws);
  ASSERT_TRUE(first) << first.error().message();
  auto second = client.topup(jws);
  ASSERT_TRUE(second);
  EXPECT_EQ(*first, *second);  // the same receipt bytes
  EXPECT_EQ(balance(alice, "alice-cny"), 7500);

  Json reuse = req;
  reuse["amount"] = 100;
  expect_refused(client.topup(alice.sign(reuse)), Errc::doc_id_reused, 7500);
  auto [status, problem] = raw_post("/v1/topup", dump_json(Json{{"request", alice.sign(reuse)}}));
  EXPECT_EQ(status, 409);
  EXPECT_EQ(problem["code"], "doc_id_reused");
}

TEST_F(BankServiceTest, BadInputGetsNamedProblemsAndMovesNothing) {
  auto client = anonymous();
  std::string good = alice.sign(alice.topup(kBank, "alice-cny", 100));
  expect_refused(client.topup(tamper_payload(good)), Errc::bad_signature, 10000);
  TestSigner rogue = rogue_se("se-alice", "alice");
  expect_refused(client.topup(rogue.sign(rogue.topup(kBank, "alice-cny", 100))),
                 Errc::cert_untrusted, 10000);
  expect_refused(client.topup(alice.sign(alice.topup("bank-z", "alice-cny", 100))),
                 Errc::misaddressed, 10000);
  expect_refused(client.topup(alice.sign(alice.topup(kBank, "nobody", 100))), Errc::account_unknown,
                 10000);
  expect_refused(client.topup(bob.sign(bob.topup(kBank, "alice-cny", 100))), Errc::not_owner,
                 10000);
  expect_refused(client.query(bob.sign(bob.query(kBank, "alice-cny"))), Errc::not_owner, 10000);
  expect_refused(client.topup(alice.sign(alice.topup(kBank, "alice-cny", 10001))),
                 Errc::insufficient_funds, 10000);
  expect_refused(client.topup(alice.sign(alice.topup(kBank, "alice-cny", 100, "USD"))),
                 Errc::currency_mismatch, 10000);
  Json base = alice.topup(kBank, "alice-cny", 100);
  auto with = [&](const char* field, Json value) {
    Json p = base;
    p[field] = std::move(value);
    return alice.sign_raw(p);
  };
  expect_refused(client.topup(with("amount", 0)), Errc::amount_zero, 10000);
  expect_refused(client.topup(with("amount", -5)), Errc::amount_negative, 10000);
  expect_refused(client.topup(with("amount", Amount::kMaxMinor + 1)), Errc::amount_overflow, 10000);
  expect_refused(client.topup(with("type", "topup.free")), Errc::unknown_type, 10000);
  expect_refused(client.topup(with("exp", std::time(nullptr) - 1)), Errc::expired, 10000);

  // The bank's own custody key, certified but not as an SE. The key file is 0600 in the bank dir.
  TestSigner custody;
  custody.se_id = kBank;
  custody.key = std::make_shared<PrivateKey>(*PrivateKey::load_pem_file(bank_dir + "/custody.key"));
  custody.chain = *certificates_from_pem(slurp(bank_dir + "/custody.pem"));
  expect_refused(client.topup(custody.sign(custody.topup(kBank, "alice-cny", 100))),
                 Errc::cert_wrong_role, 10000);

  // Bodies: malformed, oversize, wrong shape, unknown fields.
  auto [s1, p1] = raw_post("/v1/topup", "{\"request\": ");
  EXPECT_EQ(s1, 400);
  EXPECT_EQ(p1["code"], "malformed_json");
  auto [s2, p2] = raw_post("/v1/topup", std::string(net::kMaxBodyBytes + 1024, ' ') + "{}");
  EXPECT_EQ(s2, 413);
  EXPECT_EQ(p2["code"], "too_large");
  auto [s3, p3] = raw_post("/v1/topup", dump_json(Json{{"request", good}, {"also", 1}}));
  EXPECT_EQ(s3, 400);
  EXPECT_EQ(p3["code"], "unknown_field");
  auto [s4, p4] = raw_post("/v1/deposit", dump_json(Json{{"note", 42}}));
  EXPECT_EQ(s4, 400);
  EXPECT_EQ(p4["code"], "bad_field");
  auto [s5, p5] = raw_post("/v1/topup", R"({"request":"a","request":"b"})");
  EXPECT_EQ(s5, 400);
  EXPECT_EQ(p5["code"], "duplicate_key");
  EXPECT_EQ(balance(alice, "alice-cny"), 10000);

  // Admin routes want the admin token.
  auto [s6, p6] = raw_post(
      "/v1/cash-in",
      dump_json(
          Json{{"account", "alice-cny"}, {"amount_minor", 5}, {"currency", "CNY"}, {"ref", "x"}}));
  EXPECT_EQ(s6, 401);
  EXPECT_EQ(p6["code"], "unauthorized");
  auto [s7, p7] = raw_post("/v1/accounts",
                           dump_json(Json{{"account", "m"}, {"currency", "CNY"}, {"user_id", "m"}}),
                           "not-the-token");
  EXPECT_EQ(s7, 401);
  auto [s8, p8] = raw_post(
      "/v1/cash-in",
      dump_json(
          Json{{"account", "alice-cny"}, {"amount_minor", -5}, {"currency", "CNY"}, {"ref", "x"}}),
      bank_token());
  EXPECT_EQ(s8, 400);
  EXPECT_EQ(p8["code"], "amount_negative");
  EXPECT_EQ(anonymous().audit().error().code, Errc::unauthorized);
  EXPECT_EQ(anonymous().account("alice-cny").error().code, Errc::unauthorized);
  EXPECT_EQ(balance(alice, "alice-cny"), 10000);
}

TEST_F(BankServiceTest, RevocationReachesTheBankThroughTheCrl) {
  auto client = anonymous();
  ASSERT_TRUE(client.topup(alice.sign(alice.topup(kBank, "alice-cny", 100))));
  ASSERT_TRUE(ca_admin().revoke(alice.cert().serial_hex(), "lost device"));
  EXPECT_EQ(anonymous().refresh_crl().error().code, Errc::unauthorized);
  ASSERT_TRUE(admin().refresh_crl());
  expect_refused(client.topup(alice.sign(alice.topup(kBank, "alice-cny", 100))), Errc::cert_revoked,
                 9900);
  // Bob is unaffected.
  EXPECT_TRUE(client.deposit(bob.sign(bob.deposit(kBank, "bob-cny", 50))));
}

TEST_F(BankServiceTest, BackgroundRefreshPicksUpRevocations) {
  bank.stop();
  ASSERT_NO_FATAL_FAILURE(start_bank({"--crl-refresh-s", "1"}));
  // E-cash out there (Alice's), so that Bob's deposits before the refresh redeem no more than was issued.
  ASSERT_TRUE(anonymous().topup(alice.sign(alice.topup(kBank, "alice-cny", 5000))));
  ASSERT_TRUE(ca_admin().revoke(bob.cert().serial_hex(), "stolen"));
  std::string jws = bob.sign(bob.deposit(kBank, "bob-cny", 50));
  Result<std::string> r = fail(Errc::internal);
  for (int i = 0; i < 50; ++i) {
    r = anonymous().deposit(jws);
    if (!r && r.error().code == Errc::cert_revoked) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::cert_revoked);
}

TEST_F(BankServiceTest, KeepsTheCachedCrlWhileTheCaIsDownAndRefusesWithoutOne) {
  ca.stop();
  bank.stop();
  // Restarted without the CA: the cached CRL (next update a day ahead) still serves.
  ASSERT_NO_FATAL_FAILURE(start_bank());
  auto r = anonymous().topup(alice.sign(alice.topup(kBank, "alice-cny", 100)));
  EXPECT_TRUE(r) << r.error().message();
  EXPECT_EQ(balance(alice, "alice-cny"), 9900);
  // Without the cache and without the CA, money does not move: retryable 503.
  bank.stop();
  std::filesystem::remove(bank_dir + "/crl.pem");
  ASSERT_NO_FATAL_FAILURE(start_bank());
  auto info = anonymous().info();
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->crl_valid);
  Json req = alice.topup(kBank, "alice-cny", 100);
  auto refused = anonymous().topup(alice.sign(req));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::unavailable);
  auto [status, problem] = raw_post("/v1/topup", dump_json(Json{{"request", alice.sign(req)}}));
  EXPECT_EQ(status, 503);
  EXPECT_EQ(problem["code"], "unavailable");
  audit_ok();
  // The CA comes back: the bank's refresher picks the CRL up and the same request goes through.
  ASSERT_NO_FATAL_FAILURE(start_ca());
  bank.stop();
  ASSERT_NO_FATAL_FAILURE(start_bank({"--ca-url", ca_url}));
  auto ok = anonymous().topup(alice.sign(req));
  EXPECT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(balance(alice, "alice-cny"), 9800);
}

TEST_F(BankServiceTest, CommandLineAdministersTheBank) {
  const auto& dir = world.tmp.path();
  std::vector<std::string> remote = {"--url",   bank_url,       "--root",
                                     root_file, "--token-file", bank_token_file};
  auto cat = [&](std::vector<std::string> a) {
    a.insert(a.begin(), "bank");
    a.insert(a.end(), remote.begin(), remote.end());
    return run_zf(a, dir);
  };
  auto open =
      cat({"open-account", "--account", "carol-cny", "--currency", "CNY", "--user", "carol"});
  ASSERT_EQ(open.exit_code, 0) << open.output;
  auto cash =
      cat({"cash-in", "--account", "carol-cny", "--amount", "CNY 12.50", "--ref", "till-7"});
  ASSERT_EQ(cash.exit_code, 0) << cash.output;
  EXPECT_NE(cash.output.find("\"amount_minor\":1250"), std::string::npos) << cash.output;
  auto again =
      cat({"cash-in", "--account", "carol-cny", "--amount", "CNY 12.50", "--ref", "till-7"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("\"replayed\":true"), std::string::npos) << again.output;
  auto clash =
      cat({"cash-in", "--account", "carol-cny", "--amount", "CNY 99.00", "--ref", "till-7"});
  EXPECT_EQ(clash.exit_code, 2);
  EXPECT_NE(clash.output.find("doc_id_reused"), std::string::npos) << clash.output;
  auto audit = cat({"audit"});
  ASSERT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_NE(audit.output.find("audit ok"), std::string::npos) << audit.output;
  EXPECT_NE(audit.output.find("issued CNY 112.50"), std::string::npos) << audit.output;
  auto info = run_zf({"bank", "info", "--url", bank_url, "--root", root_file}, dir);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("bank bank-a"), std::string::npos);
  // A second init on the same directory is refused.
  auto reinit = run_zf({"bank", "init", "--dir", bank_dir, "--id", kBank, "--ca-url", ca_url,
                        "--ca-root", root_file, "--ca-token-file", ca_token_file},
                       dir);
  EXPECT_NE(reinit.exit_code, 0);
  // Key files are private.
  for (const char* f : {"custody.key", "tls.key", "admin.token"})
    EXPECT_EQ(
        std::filesystem::status(bank_dir + "/" + f).permissions() & std::filesystem::perms::all,
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << f;
}

}  // namespace
}  // namespace zf::test
