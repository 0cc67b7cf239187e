// The bank's rules in-process: a real CA (Authority), SEs enrolled with
// attestation, documents signed with their keys, a SQLite bank.db in a temp dir.
#include "bank/bank.h"

#include <thread>

#include "bank_fixture.h"
#include "store/sqlite.h"

namespace zf::test {
namespace {

using bank::Bank;

constexpr const char* kBank = "bank-a";

class BankTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = ca::Authority::open(world.ca_dir);
    ASSERT_TRUE(a) << a.error().message();
    authority = std::move(*a);
    src = in_process_source(*authority);
    bank_dir = (world.tmp.path() / "bank").string();
    bank::InitOptions o{bank_dir, kBank, "https://127.0.0.1:1", world.root().pem(), {}, {}, {}};
    auto issue = [this](const std::string& role, const std::string& csr) {
      return src.issue(role, csr, std::nullopt, "");
    };
    ASSERT_TRUE(bank::init_bank(o, issue));
    auto b = Bank::open(bank_dir);
    ASSERT_TRUE(b) << b.error().message();
    bank = std::move(*b);
    ASSERT_FALSE(bank->has_valid_crl());
    ASSERT_TRUE(bank->install_crl(*authority->crl()));

    alice = enroll_se(src, world, "se-alice", "alice");
    bob = enroll_se(src, world, "se-bob", "bob");
    ASSERT_TRUE(bank->open_account({"alice-cny", "CNY", "alice", std::nullopt}));
    ASSERT_TRUE(bank->open_account({"bob-cny", "CNY", "bob", std::nullopt}));
    ASSERT_TRUE(bank->cash_in("alice-cny", *Amount::of("CNY", 10000), "counter-1"));
  }

  void TearDown() override {
    // Conservation must hold after every test, whatever it did.
    if (bank) expect_books_ok();
  }

  void expect_books_ok() {
    auto r = bank->audit();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(r->ok()) << (r->violations.empty() ? "" : r->violations.front());
    for (const auto& f : r->currencies) EXPECT_TRUE(f.conserved) << f.currency;
  }

  std::int64_t balance(const std::string& account) { return balance_of(bank->store(), account); }
  std::int64_t outstanding() { return balance(ledger::outstanding_account_id("CNY")); }

  // The receipt verifies as a custody document of this bank; returns its payload.
  Document open_receipt(const std::string& jws) {
    CertVerifier v(world.root());
    auto d = open_signed_document(jws, v, Role::custody);
    EXPECT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->signers.front().subject_cn(), kBank);
    return d->doc;
  }

  // Expects `r` to fail with `code` and no money to have moved.
  template <class T>
  void expect_refused(const Result<T>& r, Errc code, std::int64_t alice_before,
                      std::int64_t outstanding_before) {
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
    EXPECT_EQ(balance("alice-cny"), alice_before);
    EXPECT_EQ(outstanding(), outstanding_before);
    expect_books_ok();
  }

  // A deposit note for this bank that no account can take: the SE already debited
  // itself, so the bank answers with a signed refusal (which returns the value to
  // the SE) and consumes the note. No money moves here, now or on a retry.
  void expect_deposit_refused(const std::string& note, const std::string& reason) {
    std::int64_t before = balance("alice-cny"), out_before = outstanding();
    auto r = bank->deposit(note);
    ASSERT_TRUE(r) << r.error().message();
    auto jws = jws_parse(*r);
    ASSERT_TRUE(jws);
    auto doc = Document::parse(to_string(jws->payload));
    ASSERT_TRUE(doc) << doc.error().message();
    EXPECT_EQ(doc->type(), "deposit.receipt");
    EXPECT_EQ(doc->str("status"), "refused");
    EXPECT_EQ(doc->str("reason"), reason);
    EXPECT_EQ(balance("alice-cny"), before);
    EXPECT_EQ(outstanding(), out_before);
    auto again = bank->deposit(note);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *r) << "a retry gets the same signed refusal";
    EXPECT_EQ(balance("alice-cny"), before);
    expect_books_ok();
  }

  CaWorld world;
  std::unique_ptr<ca::Authority> authority;
  CertSource src;
  std::string bank_dir;
  std::unique_ptr<Bank> bank;
  TestSigner alice, bob;
};

TEST_F(BankTest, TopupDebitsTheAccountAndReturnsASignedReceipt) {
  Json req = alice.topup(kBank, "alice-cny", 2500);
  auto receipt = bank->topup(alice.sign(req));
  ASSERT_TRUE(receipt) << receipt.error().message();
  Document d = open_receipt(*receipt);
  EXPECT_EQ(d.type(), "topup.receipt");
  EXPECT_EQ(d.id(), std::string(kBank) + ":r:" + req["id"].get<std::string>());
  EXPECT_EQ(d.issuer(), kBank);
  EXPECT_EQ(d.str("request_id"), req["id"]);
  EXPECT_EQ(d.str("se"), "se-alice");
  EXPECT_EQ(d.str("account"), "alice-cny");
  EXPECT_EQ(d.str("bank"), kBank);
  EXPECT_EQ(*d.amount(), *Amount::of("CNY", 2500));

  EXPECT_EQ(balance("alice-cny"), 7500);
  EXPECT_EQ(outstanding(), 2500);
  auto audit = bank->audit();
  ASSERT_TRUE(audit);
  ASSERT_EQ(audit->currencies.size(), 1u);
  EXPECT_EQ(audit->currencies[0].customer_minor, 7500);
  EXPECT_EQ(audit->currencies[0].ecash_outstanding_minor, 2500);
  EXPECT_EQ(audit->currencies[0].issued_minor, 10000);
}

TEST_F(BankTest, SameRequestAgainReturnsTheSameReceiptAndDebitsOnce) {
  std::string jws = alice.sign(alice.topup(kBank, "alice-cny", 1000));
  auto first = bank->topup(jws);
  ASSERT_TRUE(first);
  auto second = bank->topup(jws);
  ASSERT_TRUE(second);
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(balance("alice-cny"), 9000);
  EXPECT_EQ(outstanding(), 1000);
}

TEST_F(BankTest, ReSignedSamePayloadIsTheSameDocumentNotANewOne) {
  // ECDSA signatures differ on every signing: de-duplication keys on the id and
  // payload, never on signature bytes (DESIGN.md §4).
  Json req = alice.topup(kBank, "alice-cny", 1000);
  std::string a = alice.sign(req), b = alice.sign(req);
  ASSERT_NE(a, b);
  auto first = bank->topup(a);
  ASSERT_TRUE(first);
  auto second = bank->topup(b);
  ASSERT_TRUE(second);
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(balance("alice-cny"), 9000);
}

TEST_F(BankTest, AnotherDocumentReusingAnIdIsRefused) {
  Json req = alice.topup(kBank, "alice-cny", 1000);
  ASSERT_TRUE(bank->topup(alice.sign(req)));
  Json other = req;
  other["amount"] = 2000;
  expect_refused(bank->topup(alice.sign(other)), Errc::doc_id_reused, 9000, 1000);
  // A deposit note with the topup's id is another document too.
  Json dep = alice.deposit(kBank, "alice-cny", 1000);
  dep["id"] = req["id"];
  dep["seq"] = req["seq"];
  expect_refused(bank->deposit(alice.sign(dep)), Errc::doc_id_reused, 9000, 1000);
  // Another SE cannot sign under Alice's id at all (issue 8: it could get her flagged as a clone).
  Json bobs = req;
  bobs["issuer"] = "se-bob";
  ASSERT_TRUE(bank->open_account({"bob-2", "CNY", "bob", std::nullopt}));
  bobs["account"] = "bob-2";
  ASSERT_TRUE(bank->cash_in("bob-2", *Amount::of("CNY", 5000), "counter-bob"));
  expect_refused(bank->topup(bob.sign(bobs)), Errc::issuer_mismatch, 9000, 1000);
  Json as_alice = req;
  as_alice["account"] = "bob-2";
  expect_refused(bank->topup(bob.sign(as_alice)), Errc::issuer_mismatch, 9000, 1000);
  EXPECT_EQ(balance("bob-2"), 5000);
}

TEST_F(BankTest, ConcurrentRetriesOfOneRequestMoveMoneyOnce) {
  std::string jws = alice.sign(alice.topup(kBank, "alice-cny", 700));
  std::vector<std::string> receipts(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      auto r = bank->topup(jws);
      receipts[i] = r ? *r : "error: " + r.error().message();
    });
  for (auto& t : threads) t.join();
  for (const auto& r : receipts) EXPECT_EQ(r, receipts[0]);
  EXPECT_EQ(balance("alice-cny"), 9300);
  EXPECT_EQ(outstanding(), 700);
}

TEST_F(BankTest, DepositCreditsAnyAccountOfThisBank) {
  ASSERT_TRUE(bank->topup(alice.sign(alice.topup(kBank, "alice-cny", 3000))));
  // Bob's SE holds e-cash (paid by Alice, say) and deposits it into Alice's account.
  Json note = bob.deposit(kBank, "alice-cny", 1200);
  auto receipt = bank->deposit(bob.sign(note));
  ASSERT_TRUE(receipt) << receipt.error().message();
  Document d = open_receipt(*receipt);
  EXPECT_EQ(d.type(), "deposit.receipt");
  EXPECT_EQ(d.str("note_id"), note["id"]);
  EXPECT_EQ(d.str("se"), "se-bob");
  EXPECT_EQ(d.str("account"), "alice-cny");
  EXPECT_EQ(*d.amount(), *Amount::of("CNY", 1200));
  EXPECT_EQ(balance("alice-cny"), 8200);
  EXPECT_EQ(outstanding(), 1800);
  // Retried: same receipt, credited once.
  EXPECT_EQ(*bank->deposit(bob.sign(note)), *receipt);
  EXPECT_EQ(balance("alice-cny"), 8200);
}

TEST_F(BankTest, QueryShowsBalanceAndHistoryToTheOwnerOnly) {
  Json req = alice.topup(kBank, "alice-cny", 400);
  ASSERT_TRUE(bank->topup(alice.sign(req)));
  auto st = bank->query(alice.sign(alice.query(kBank, "alice-cny")));
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(st->account.balance_minor, 9600);
  ASSERT_EQ(st->history.size(), 2u);
  EXPECT_EQ(st->history[0].doc_id, req["id"]);
  EXPECT_EQ(st->history[0].kind, "topup");
  EXPECT_EQ(st->history[0].amount_minor, -400);
  EXPECT_EQ(st->history[1].kind, "cash_in");
  EXPECT_EQ(st->history[1].amount_minor, 10000);

  auto other = bank->query(bob.sign(bob.query(kBank, "alice-cny")));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Errc::not_owner);
}

TEST_F(BankTest, AQueryAnswersOnceAndMustExpireSoon) {
  std::string q = alice.sign(alice.query(kBank, "alice-cny"));
  ASSERT_TRUE(bank->query(q));
  auto again = bank->query(q);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::replayed);

  // A refused query is not consumed: the owner's SE can still present it.
  std::string misaddressed = alice.sign(alice.query("bank-z", "alice-cny"));
  EXPECT_EQ(bank->query(misaddressed).error().code, Errc::misaddressed);

  Json no_exp = alice.query(kBank, "alice-cny");
  no_exp.erase("exp");
  auto r = bank->query(alice.sign(no_exp));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::missing_field);
  EXPECT_EQ(r.error().field, "exp");

  Json long_lived = alice.query(kBank, "alice-cny");
  long_lived["exp"] = long_lived["iat"].get<std::int64_t>() + bank::kMaxQueryLifetimeS + 1;
  auto l = bank->query(alice.sign(long_lived));
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, Errc::bad_field);
  long_lived["exp"] = long_lived["iat"].get<std::int64_t>() + bank::kMaxQueryLifetimeS;
  EXPECT_TRUE(bank->query(alice.sign(long_lived)));
}

TEST_F(BankTest, RefusesTamperedForeignAndWrongRoleSignatures) {
  std::string good = alice.sign(alice.topup(kBank, "alice-cny", 100));
  expect_refused(bank->topup(tamper_payload(good)), Errc::bad_signature, 10000, 0);

  TestSigner rogue = rogue_se("se-alice", "alice");
  expect_refused(bank->topup(rogue.sign(rogue.topup(kBank, "alice-cny", 100))),
                 Errc::cert_untrusted, 10000, 0);

  // The bank's own custody key is certified, but not as a secure element.
  TestSigner custody;
  custody.se_id = kBank;
  custody.key = std::make_shared<PrivateKey>(*PrivateKey::load_pem_file(bank_dir + "/custody.key"));
  custody.chain = bank->chain();
  expect_refused(bank->topup(custody.sign(custody.topup(kBank, "alice-cny", 100))),
                 Errc::cert_wrong_role, 10000, 0);
}

TEST_F(BankTest, RevokedSeIsRefusedOnceTheBankHasTheNewCrl) {
  std::string before = alice.sign(alice.topup(kBank, "alice-cny", 100));
  ASSERT_TRUE(bank->topup(before));
  ASSERT_TRUE(authority->revoke(ca::Caller::admin, alice.cert().serial_hex(), "lost device"));
  ASSERT_TRUE(bank->install_crl(*authority->crl()));
  expect_refused(bank->topup(alice.sign(alice.topup(kBank, "alice-cny", 100))), Errc::cert_revoked,
                 9900, 100);
  expect_refused(bank->query(alice.sign(alice.query(kBank, "alice-cny"))), Errc::cert_revoked, 9900,
                 100);
}

TEST_F(BankTest, RefusesDocumentsThatDoNotFitTheAccount) {
  expect_refused(bank->topup(alice.sign(alice.topup("bank-b", "alice-cny", 100))),
                 Errc::misaddressed, 10000, 0);
  expect_refused(bank->topup(alice.sign(alice.topup(kBank, "nobody", 100))), Errc::account_unknown,
                 10000, 0);
  expect_refused(
      bank->topup(alice.sign(alice.topup(kBank, ledger::issuance_account_id("CNY"), 100))),
      Errc::account_unknown, 10000, 0);
  expect_deposit_refused(alice.sign(alice.deposit(kBank, ledger::outstanding_account_id("CNY"), 100)),
                         "account_unknown");
  expect_refused(bank->topup(bob.sign(bob.topup(kBank, "alice-cny", 100))), Errc::not_owner, 10000,
                 0);
  expect_refused(bank->topup(alice.sign(alice.topup(kBank, "alice-cny", 10001))),
                 Errc::insufficient_funds, 10000, 0);
  expect_refused(bank->topup(alice.sign(alice.topup(kBank, "alice-cny", 100, "USD"))),
                 Errc::currency_mismatch, 10000, 0);
  expect_deposit_refused(alice.sign(alice.deposit(kBank, "alice-cny", 100, "HKD")), "currency_mismatch");
  expect_refused(bank->deposit(alice.sign(alice.deposit("bank-b", "alice-cny", 100))), Errc::misaddressed,
                 10000, 0);
  // An account bound to one SE refuses the same user's other SE.
  TestSigner alice2 = enroll_se(src, world, "se-alice-2", "alice");
  ASSERT_TRUE(bank->open_account({"alice-bound", "CNY", "alice", "se-alice"}));
  ASSERT_TRUE(bank->cash_in("alice-bound", *Amount::of("CNY", 500), "counter-bound"));
  expect_refused(bank->topup(alice2.sign(alice2.topup(kBank, "alice-bound", 100))), Errc::not_owner,
                 10000, 0);
  ASSERT_TRUE(bank->topup(alice.sign(alice.topup(kBank, "alice-bound", 100))));
  EXPECT_EQ(balance("alice-bound"), 400);
}

TEST_F(BankTest, RefusesBadAmountsTypesAndTimes) {
  auto with = [&](Json p, const char* field, Json value) {
    p[field] = std::move(value);
    return alice.sign_raw(p);
  };
  Json base = alice.topup(kBank, "alice-cny", 100);
  expect_refused(bank->topup(with(base, "amount", 0)), Errc::amount_zero, 10000, 0);
  expect_refused(bank->topup(with(base, "amount", -100)), Errc::amount_negative, 10000, 0);
  expect_refused(bank->topup(with(base, "amount", Amount::kMaxMinor + 1)), Errc::amount_overflow,
                 10000, 0);
  expect_refused(bank->topup(with(base, "amount", std::uint64_t{1} << 63)), Errc::amount_overflow,
                 10000, 0);
  expect_refused(bank->topup(with(base, "amount", "100")), Errc::bad_amount, 10000, 0);
  expect_refused(bank->topup(with(base, "currency", "XXX")), Errc::bad_currency, 10000, 0);
  expect_refused(bank->topup(with(base, "type", "topup.bonus")), Errc::unknown_type, 10000, 0);
  expect_refused(bank->topup(with(base, "v", 2)), Errc::unknown_version, 10000, 0);
  expect_refused(bank->topup(with(base, "extra", true)), Errc::unknown_field, 10000, 0);
  // A known type at the wrong door.
  expect_refused(bank->topup(alice.sign(alice.deposit(kBank, "alice-cny", 100))),
                 Errc::unknown_type, 10000, 0);
  expect_refused(bank->deposit(alice.sign(alice.topup(kBank, "alice-cny", 100))),
                 Errc::unknown_type, 10000, 0);
  // Expired, and issued in the future.
  expect_refused(bank->topup(with(base, "exp", std::time(nullptr) - 10)), Errc::expired, 10000, 0);
  expect_refused(bank->topup(with(base, "iat", std::time(nullptr) + 3600)), Errc::not_yet_valid,
                 10000, 0);
  // Not a JWS at all.
  expect_refused(bank->topup("not a jws"), Errc::malformed_json, 10000, 0);
  // A document that has not expired yet is fine.
  ASSERT_TRUE(bank->topup(with(base, "exp", std::time(nullptr) + 600)));
  EXPECT_EQ(balance("alice-cny"), 9900);
}

TEST_F(BankTest, WithoutACurrentCrlNothingMoves) {
  std::time_t now = std::time(nullptr);
  std::string jws = alice.sign(alice.topup(kBank, "alice-cny", 100));
  // The CRL's next update is a day ahead; a day and a bit later it is stale.
  bank->set_clock([now] { return now + 86400 + 120; });
  EXPECT_FALSE(bank->has_valid_crl());
  expect_refused(bank->topup(jws), Errc::unavailable, 10000, 0);
  bank->set_clock({});
  ASSERT_TRUE(bank->topup(jws));

  // A fresh bank with no CRL at all refuses too.
  auto cold = Bank::open(bank_dir);
  ASSERT_TRUE(cold);
  auto r = (*cold)->deposit(alice.sign(alice.deposit(kBank, "alice-cny", 100)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
}

TEST_F(BankTest, InstallCrlRefusesForeignStaleAndOlderLists) {
  // A CRL signed by another key under the same name.
  PrivateKey k = *PrivateKey::generate();
  IssueParams p;
  p.common_name = "zhuanfu Root CA";
  p.not_before = std::time(nullptr) - 60;
  p.not_after = p.not_before + 86400;
  p.serial = new_serial();
  auto other = make_self_signed_ca(k, p);
  std::time_t now = std::time(nullptr);
  auto foreign = bank->install_crl(*make_crl(*other, k, CrlParams{{}, now - 60, now + 3600, 1}));
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, Errc::bad_signature);

  PrivateKey root_key = *PrivateKey::load_pem_file(world.ca_dir + "/root.key");
  auto stale = bank->install_crl(
      *make_crl(world.root(), root_key, CrlParams{{}, now - 7200, now - 3600, 1}));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, Errc::expired);

  // An older list that is still within its validity must not replace a newer one
  // (it could predate a revocation).
  auto older = bank->install_crl(
      *make_crl(world.root(), root_key, CrlParams{{}, now - 3600, now + 3600, 1}));
  ASSERT_FALSE(older);
  EXPECT_EQ(older.error().code, Errc::conflict);
  EXPECT_TRUE(bank->has_valid_crl());
  EXPECT_TRUE(bank->topup(alice.sign(alice.topup(kBank, "alice-cny", 100))));
}

TEST_F(BankTest, CashInIsExactlyOncePerReference) {
  auto again = bank->cash_in("alice-cny", *Amount::of("CNY", 10000), "counter-1");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(balance("alice-cny"), 10000);
  auto different = bank->cash_in("alice-cny", *Amount::of("CNY", 20000), "counter-1");
  ASSERT_FALSE(different);
  EXPECT_EQ(different.error().code, Errc::doc_id_reused);
  EXPECT_EQ(bank->cash_in("alice-cny", *Amount::of("CNY", 0), "counter-2").error().code,
            Errc::amount_zero);
  EXPECT_EQ(bank->cash_in("alice-cny", *Amount::of("USD", 5), "counter-3").error().code,
            Errc::currency_mismatch);
  EXPECT_EQ(bank->cash_in("ghost", *Amount::of("CNY", 5), "counter-4").error().code,
            Errc::account_unknown);
  EXPECT_EQ(bank->cash_in("alice-cny", *Amount::of("CNY", 5), "bad ref").error().code,
            Errc::bad_field);
  EXPECT_EQ(balance("alice-cny"), 10000);
  auto audit = bank->audit();
  EXPECT_EQ(audit->currencies[0].issued_minor, 10000);
}

TEST_F(BankTest, OpenAccountChecksIdsAndIsIdempotent) {
  auto again = bank->open_account({"alice-cny", "CNY", "alice", std::nullopt});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->balance_minor, 10000);
  EXPECT_EQ(bank->open_account({"alice-cny", "CNY", "mallory", std::nullopt}).error().code,
            Errc::conflict);
  EXPECT_EQ(bank->open_account({"sys:issuance:CNY", "CNY", "x", std::nullopt}).error().code,
            Errc::bad_field);
  EXPECT_EQ(bank->open_account({"a b", "CNY", "x", std::nullopt}).error().code, Errc::bad_field);
  EXPECT_EQ(bank->open_account({"x-1", "XYZ", "x", std::nullopt}).error().code, Errc::bad_currency);
  EXPECT_EQ(bank->open_account({"x-2", "CNY", "", std::nullopt}).error().code, Errc::bad_field);
  // A second currency gets its own system accounts.
  ASSERT_TRUE(bank->open_account({"alice-usd", "USD", "alice", std::nullopt}));
  EXPECT_EQ(balance(ledger::issuance_account_id("USD")), 0);
  EXPECT_EQ(balance(ledger::outstanding_account_id("USD")), 0);
}

TEST_F(BankTest, StateSurvivesReopening) {
  std::string jws = alice.sign(alice.topup(kBank, "alice-cny", 2500));
  auto receipt = bank->topup(jws);
  ASSERT_TRUE(receipt);
  bank.reset();
  auto b = Bank::open(bank_dir);
  ASSERT_TRUE(b);
  bank = std::move(*b);
  ASSERT_TRUE(bank->install_crl(*authority->crl()));
  EXPECT_EQ(*bank->topup(jws), *receipt);
  EXPECT_EQ(balance("alice-cny"), 7500);
}

}  // namespace
}  // namespace zf::test
