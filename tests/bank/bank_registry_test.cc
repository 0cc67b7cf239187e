// The bank and the registry together (DESIGN.md §7, issue 4): the bank claims
// every top-up request and deposit note at the registry before it moves money
// or refuses, and moves nothing when the registry does not name it the holder.
// In-process: a real CA (Authority), a real Registry on its own registry.db, a
// real Bank on bank.db; the bank reaches the registry through a direct call
// instead of HTTPS (the HTTPS path runs in tests/system).
#include <filesystem>

#include "bank_registry_world.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;
using registry::RecordStatus;

TEST_F(BankRegistryTest, TopupsAndDepositsAreClaimedByTheBankBeforeMoneyMoves) {
  Json request = alice.topup(kBank, "alice-cny", 2500);
  std::string req = alice.sign(request);
  auto receipt = bank->topup(req);
  ASSERT_TRUE(receipt) << receipt.error().message();
  EXPECT_EQ(balance("alice-cny"), 7500);
  auto rec = record_of("se-alice:1");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->processor, kBank);
  EXPECT_EQ(rec->doc_type, "topup.request");
  EXPECT_EQ(rec->doc_issuer, "se-alice");
  EXPECT_EQ(rec->doc_seq, 1);
  EXPECT_EQ(rec->result_digest, sha256(jws_parse(req)->payload));
  // A retry is answered from the bank's own table, with the same receipt.
  EXPECT_EQ(*bank->topup(req), *receipt);
  EXPECT_EQ(balance("alice-cny"), 7500);

  std::string note = alice.sign(alice.deposit(kBank, "bob-cny", 1000));
  ASSERT_TRUE(bank->deposit(note));
  EXPECT_EQ(balance("bob-cny"), 1000);
  auto dep = record_of("se-alice:2");
  ASSERT_TRUE(dep);
  EXPECT_EQ(dep->processor, kBank);
  EXPECT_EQ(dep->doc_type, "deposit.note");
  EXPECT_EQ(reg->store().stats()->records, 2);
}

// Issue 8 (2): se-mallory, a genuine SE, signed a top-up under Alice's ids into
// an account that does not exist. The bank used to claim it as se-alice:1 and
// record a signed refusal (so Mallory paid nothing), after which Alice's real
// request was refused as seq_reused with an alert inviting her revocation.
// Now a document is bound to its signer before anything is claimed.
TEST_F(BankRegistryTest, AnSeCannotSignUnderAnotherSesIds) {
  TestSigner mallory = enroll_se(src, world, "se-mallory", "mallory");
  for (const auto& change : {Json{{"issuer", "se-alice"}, {"id", "se-alice:1"}},  // all of Alice's
                             Json{{"id", "se-alice:1"}},                          // her id under his name
                             Json{{"issuer", "se-alice"}}}) {                     // his id under her name
    Json forged = mallory.topup(kBank, "no-such-account", 2500);
    forged.update(change);
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto r = bank->topup(mallory.sign(forged));
      ASSERT_FALSE(r) << change.dump();
      EXPECT_EQ(r.error().code, Errc::issuer_mismatch) << r.error().message();
    }
  }
  EXPECT_FALSE(reg->query("se-alice:1")) << "nothing was claimed under Alice's id";
  auto processed = bank->store().find_processed("se-alice:1");
  ASSERT_TRUE(processed);
  EXPECT_FALSE(*processed) << "no refusal was recorded under Alice's id";

  auto receipt = bank->topup(alice.sign(alice.topup(kBank, "alice-cny", 2500)));
  ASSERT_TRUE(receipt) << receipt.error().message();
  EXPECT_EQ(balance("alice-cny"), 7500);
  EXPECT_TRUE(reg->alerts()->empty()) << "no alert names Alice";
  // The same binding holds for deposits.
  Json note = mallory.deposit(kBank, "bob-cny", 100);
  note["issuer"] = "se-alice";
  note["id"] = "se-alice:2";
  auto dep = bank->deposit(mallory.sign(note));
  ASSERT_FALSE(dep);
  EXPECT_EQ(dep.error().code, Errc::issuer_mismatch) << dep.error().message();
  EXPECT_EQ(balance("bob-cny"), 0);
}

TEST_F(BankRegistryTest, ADocumentAnotherProcessorHoldsIsRefusedWithTheRegistryRecord) {
  // bank-b got a copy of Alice's deposit note and claimed it first.
  auto key_b = *PrivateKey::generate();
  auto cert_b = src.issue("custody", *make_csr_pem(key_b, {"bank-b", ""}), std::nullopt, "");
  ASSERT_TRUE(cert_b) << cert_b.error().message();
  std::string note = alice.sign(alice.deposit(kBank, "bob-cny", 1000));
  auto won = reg->claim(claim_as(note, "bank-b", key_b, {*cert_b, world.root()}));
  ASSERT_TRUE(won && won->status == RecordStatus::claimed);

  std::int64_t out_before = outstanding();
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto r = bank->deposit(note);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::replayed) << r.error().message();
    auto ev = evidence_of(r.error());
    EXPECT_EQ(ev.status, RecordStatus::already_processed);
    EXPECT_EQ(ev.processor, "bank-b");
    EXPECT_EQ(ev.doc_id, "se-alice:1");
    EXPECT_EQ(balance("bob-cny"), 0);
    EXPECT_EQ(outstanding(), out_before);
  }
  auto processed = bank->store().find_processed("se-alice:1");
  ASSERT_TRUE(processed);
  EXPECT_FALSE(*processed) << "a document the bank does not hold is not in its table";
}

TEST_F(BankRegistryTest, ASecondDocumentUnderASpentSeqIsRefusedAndRaisesAnAlert) {
  ASSERT_TRUE(bank->topup(alice.sign(alice.topup(kBank, "alice-cny", 5000))));
  ASSERT_TRUE(bank->deposit(alice.sign(alice.deposit(kBank, "bob-cny", 1000))));
  // Alice's SE restored from an older state signs another note with seq 2.
  alice.seq = 1;
  std::string clone = alice.sign(alice.deposit(kBank, "bob-cny", 3000));
  std::int64_t out_before = outstanding();
  auto r = bank->deposit(clone);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::seq_reused) << r.error().message();
  auto ev = evidence_of(r.error());
  EXPECT_EQ(ev.status, RecordStatus::seq_reused);
  EXPECT_EQ(ev.doc_issuer, "se-alice");
  EXPECT_EQ(ev.doc_seq, 2);
  EXPECT_EQ(balance("bob-cny"), 1000);
  EXPECT_EQ(outstanding(), out_before);
  auto alerts = reg->alerts();
  ASSERT_TRUE(alerts);
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ(alerts->front().se_id, "se-alice");
  EXPECT_EQ(alerts->front().seq, 2);
  EXPECT_EQ(alerts->front().first_processor, kBank);
  EXPECT_EQ(alerts->front().second_processor, kBank);
  // The same clone as a top-up request is refused the same way.
  alice.seq = 0;
  auto as_topup = bank->topup(alice.sign(alice.topup(kBank, "alice-cny", 500)));
  ASSERT_FALSE(as_topup);
  EXPECT_EQ(as_topup.error().code, Errc::seq_reused);
  EXPECT_EQ(balance("alice-cny"), 5000);
}

TEST_F(BankRegistryTest, WithoutARegistryAnswerNothingMovesAndTheRetryMovesItOnce) {
  ASSERT_NO_FATAL_FAILURE(open_registry(/*with_crl=*/false));  // answers `unavailable`
  std::string req = alice.sign(alice.topup(kBank, "alice-cny", 2500));
  std::string note = alice.sign(alice.deposit(kBank, "bob-cny", 700));
  std::string refused = alice.sign(alice.topup(kBank, "no-such-account", 100));
  std::int64_t out_before = outstanding();
  for (const auto& [what, r] : {std::pair{"topup", bank->topup(req)},
                                std::pair{"deposit", bank->deposit(note)},
                                std::pair{"refusal", bank->topup(refused)}}) {
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code, Errc::unavailable) << what << ": " << r.error().message();
  }
  EXPECT_EQ(balance("alice-cny"), 10000);
  EXPECT_EQ(balance("bob-cny"), 0);
  EXPECT_EQ(outstanding(), out_before);
  for (const char* id : {"se-alice:1", "se-alice:2", "se-alice:3"})
    EXPECT_FALSE(*bank->store().find_processed(id)) << id << ": nothing recorded unclaimed";

  // The registry is back: the same documents go through, once.
  ASSERT_TRUE(reg->install_crl(*authority->crl()));
  auto receipt = bank->topup(req);
  ASSERT_TRUE(receipt) << receipt.error().message();
  ASSERT_TRUE(bank->deposit(note));
  auto refusal = bank->topup(refused);
  ASSERT_TRUE(refusal) << refusal.error().message();
  EXPECT_EQ(refusal_reason(*refusal), "account_unknown");
  EXPECT_EQ(*bank->topup(req), *receipt);
  EXPECT_EQ(balance("alice-cny"), 7500);
  EXPECT_EQ(balance("bob-cny"), 700);
  EXPECT_EQ(record_of("se-alice:3")->processor, kBank) << "a signed refusal consumes the request";
}

TEST_F(BankRegistryTest, AClaimWhoseCommitWasLostIsTakenUpByTheRetry) {
  // The bank claimed the request and died before its transaction committed:
  // the registry holds the id for bank-a, the bank's books know nothing.
  std::string req = alice.sign(alice.topup(kBank, "alice-cny", 4000));
  auto own_key = PrivateKey::load_pem_file(bank_dir + "/custody.key");
  ASSERT_TRUE(own_key);
  ASSERT_TRUE(reg->claim(claim_as(req, kBank, *own_key, bank->chain())));
  auto receipt = bank->topup(req);
  ASSERT_TRUE(receipt) << receipt.error().message();
  EXPECT_EQ(balance("alice-cny"), 6000);
  EXPECT_EQ(reg->store().stats()->records, 1);
}

TEST_F(BankRegistryTest, DocumentsForAnotherBankAreNotClaimed) {
  std::string note = alice.sign(alice.deposit("bank-z", "bob-cny", 100));
  auto r = bank->deposit(note);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::misaddressed);
  EXPECT_EQ(reg->query("se-alice:1").error().code, Errc::not_found)
      << "the note stays valid at the bank it names";
}

TEST_F(BankRegistryTest, InitRefusesARegistryUrlWithoutAnId) {
  auto issue = [this](const std::string& role, const std::string& csr) {
    return src.issue(role, csr, std::nullopt, "");
  };
  std::string dir = (world.tmp.path() / "bank-2").string();
  auto s = bank::init_bank({dir, "bank-2", "https://127.0.0.1:1", world.root().pem(), "https://127.0.0.1:2", "", {}},
                           issue);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::bad_field);
  EXPECT_EQ(s.error().field, "registry_id");
  auto plain = bank::init_bank(
      {dir, "bank-2", "https://127.0.0.1:1", world.root().pem(), "http://127.0.0.1:2", "registry-1", {}}, issue);
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().field, "registry_url");
  EXPECT_FALSE(fs::exists(fs::path(dir) / "bank.json"));
}

}  // namespace
}  // namespace zf::test
