// Account transfer (DESIGN.md §6.7, docs/bank-api.md "Transfer"): a
// transfer.order signed by the SE bound to its `from` account, claimed at the
// registry, moves money in one journal entry and is answered by a signed
// transfer.receipt, once. Bad orders are refused by name and move nothing;
// the books balance after every test (BankRegistryTest::TearDown).
#include "bank_registry_world.h"

namespace zf::test {
namespace {

class TransferTest : public BankRegistryTest {
 protected:
  void SetUp() override {
    BankRegistryTest::SetUp();
    bob = enroll_se(src, world, "se-bob", "bob");
  }
  Json order(TestSigner& se, const std::string& from, const std::string& to, std::int64_t minor,
             const std::string& bank = kBank, const std::string& currency = "CNY") {
    return se.payload("transfer.order", Json{{"amount", minor},
                                             {"currency", currency},
                                             {"from", from},
                                             {"to", to},
                                             {"bank", bank}});
  }
  Document receipt_doc(const std::string& jws) {
    CertVerifier v(world.root());
    auto d = open_signed_document(jws, v, Role::custody);
    EXPECT_TRUE(d) << d.error().message();
    return d ? d->doc : *Document::from_json(Json::object());
  }
  // `r` is refused with `code`, nothing moved and nothing is recorded at the registry.
  void expect_refused_unrecorded(const Result<std::string>& r, Errc code, const std::string& doc_id) {
    ASSERT_FALSE(r) << "expected " << errc_name(code);
    EXPECT_EQ(r.error().code, code) << r.error().message();
    EXPECT_EQ(balance("alice-cny"), 10000);
    EXPECT_EQ(balance("bob-cny"), 0);
    EXPECT_FALSE(record_of(doc_id)) << "a refused order is not claimed";
  }
  TestSigner bob;
};

TEST_F(TransferTest, MovesMoneyInOneEntryAndAnswersASignedReceiptOnce) {
  Json o = order(alice, "alice-cny", "bob-cny", 2500);
  std::string jws = alice.sign(o);
  auto receipt = bank->transfer(jws);
  ASSERT_TRUE(receipt) << receipt.error().message();
  EXPECT_EQ(balance("alice-cny"), 7500);
  EXPECT_EQ(balance("bob-cny"), 2500);
  Document d = receipt_doc(*receipt);
  EXPECT_EQ(d.type(), "transfer.receipt");
  EXPECT_EQ(d.str("order_id"), o["id"]);
  EXPECT_EQ(d.str("from"), "alice-cny");
  EXPECT_EQ(d.str("to"), "bob-cny");
  EXPECT_EQ(d.str("se"), "se-alice");
  EXPECT_EQ(d.str("status"), "");
  EXPECT_EQ(d.amount()->minor(), 2500);
  auto rec = record_of(o["id"]);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->processor, kBank);
  EXPECT_EQ(rec->doc_type, "transfer.order");
  // The same order again: the same receipt, nothing moves.
  auto again = bank->transfer(jws);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *receipt);
  EXPECT_EQ(balance("alice-cny"), 7500);
  EXPECT_EQ(balance("bob-cny"), 2500);
  // Both sides' histories show it.
  auto hist = bank->store().history("bob-cny", 5);
  ASSERT_TRUE(hist);
  ASSERT_EQ(hist->size(), 1u);
  EXPECT_EQ(hist->front().kind, "transfer");
  EXPECT_EQ(hist->front().amount_minor, 2500);
}

TEST_F(TransferTest, InsufficientFundsConsumesTheOrderWithASignedRefusal) {
  std::string jws = alice.sign(order(alice, "alice-cny", "bob-cny", 10001));
  auto r = bank->transfer(jws);
  ASSERT_TRUE(r) << r.error().message();
  Document d = receipt_doc(*r);
  EXPECT_EQ(d.str("status"), "refused");
  EXPECT_EQ(d.str("reason"), "insufficient_funds");
  EXPECT_EQ(balance("alice-cny"), 10000);
  EXPECT_EQ(balance("bob-cny"), 0);
  // Consumed: the same order after a cash-in is still the same refusal.
  ASSERT_TRUE(bank->cash_in("alice-cny", *Amount::of("CNY", 5000), "counter-2"));
  auto again = bank->transfer(jws);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *r);
  EXPECT_EQ(balance("bob-cny"), 0);
}

TEST_F(TransferTest, AnSeThatMayNotSignForFromIsRefused) {
  Json o = order(bob, "alice-cny", "bob-cny", 100);
  expect_refused_unrecorded(bank->transfer(bob.sign(o)), Errc::not_owner, o["id"]);
  // An account bound to one SE of its owner refuses the owner's other SEs.
  ASSERT_TRUE(bank->open_account({"alice-bound", "CNY", "alice", std::string("se-alice-2")}));
  Json bound = order(alice, "alice-bound", "bob-cny", 100);
  auto r = bank->transfer(alice.sign(bound));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_owner);
}

TEST_F(TransferTest, TheSameAccountOnBothSidesIsRefused) {
  Json o = order(alice, "alice-cny", "alice-cny", 100);
  expect_refused_unrecorded(bank->transfer(alice.sign(o)), Errc::same_account, o["id"]);
}

TEST_F(TransferTest, AnUnknownOrSystemOrOtherCurrencyToAccountIsRefused) {
  Json unknown = order(alice, "alice-cny", "nobody-cny", 100);
  expect_refused_unrecorded(bank->transfer(alice.sign(unknown)), Errc::account_unknown, unknown["id"]);
  Json system = order(alice, "alice-cny", ledger::outstanding_account_id("CNY"), 100);
  expect_refused_unrecorded(bank->transfer(alice.sign(system)), Errc::account_unknown, system["id"]);
  ASSERT_TRUE(bank->open_account({"bob-usd", "USD", "bob", std::nullopt}));
  Json usd = order(alice, "alice-cny", "bob-usd", 100);
  expect_refused_unrecorded(bank->transfer(alice.sign(usd)), Errc::currency_mismatch, usd["id"]);
}

TEST_F(TransferTest, AnOrderForAnotherBankIsNotOurs) {
  Json o = order(alice, "alice-cny", "bob-cny", 100, "bank-z");
  expect_refused_unrecorded(bank->transfer(alice.sign(o)), Errc::misaddressed, o["id"]);
}

TEST_F(TransferTest, ADifferentOrderUnderASpentIdIsRefusedAndMovesNothing) {
  ASSERT_TRUE(bank->transfer(alice.sign(order(alice, "alice-cny", "bob-cny", 1000))));
  alice.seq = 0;  // a restored SE signs another order under the same seq
  auto r = bank->transfer(alice.sign(order(alice, "alice-cny", "bob-cny", 5000)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::seq_reused) << r.error().message();
  EXPECT_EQ(balance("alice-cny"), 9000);
  EXPECT_EQ(balance("bob-cny"), 1000);
}

TEST_F(TransferTest, AnOrderAnotherProcessorHoldsAtTheRegistryIsRefused) {
  std::string jws = alice.sign(order(alice, "alice-cny", "bob-cny", 1000));
  // Another bank claimed the order first.
  auto other = PrivateKey::generate();
  ASSERT_TRUE(other);
  auto cert = src.issue("custody", *make_csr_pem(*other, {"bank-z", ""}), std::nullopt, "");
  ASSERT_TRUE(cert) << cert.error().message();
  ASSERT_TRUE(reg->claim(claim_as(jws, "bank-z", *other, {*cert, world.root()})));
  auto r = bank->transfer(jws);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::replayed);
  EXPECT_EQ(evidence_of(r.error()).processor, "bank-z");
  EXPECT_EQ(balance("alice-cny"), 10000);
}

TEST_F(TransferTest, TamperedOrUnsignedOrdersAreRefused) {
  std::string jws = alice.sign(order(alice, "alice-cny", "bob-cny", 100));
  auto r = bank->transfer(tamper_payload(jws));
  ASSERT_FALSE(r);
  EXPECT_EQ(balance("alice-cny"), 10000);
  TestSigner rogue = rogue_se("se-alice", "alice");
  auto forged = bank->transfer(rogue.sign(order(rogue, "alice-cny", "bob-cny", 100)));
  ASSERT_FALSE(forged);
  EXPECT_EQ(forged.error().code, Errc::cert_untrusted) << forged.error().message();
  // A top-up request is not an order.
  auto wrong = bank->transfer(alice.sign(alice.topup(kBank, "alice-cny", 100)));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::unknown_type);
  EXPECT_EQ(balance("alice-cny"), 10000);
  EXPECT_EQ(balance("bob-cny"), 0);
}

// The bank claimed the order and died before its transaction committed: the
// registry holds the id for this bank, the books know nothing; the retry
// claims again, gets the same record and moves the money once.
TEST_F(TransferTest, AClaimWhoseCommitWasLostIsTakenUpByTheRetryOnce) {
  std::string jws = alice.sign(order(alice, "alice-cny", "bob-cny", 4000));
  auto own_key = PrivateKey::load_pem_file(bank_dir + "/custody.key");
  ASSERT_TRUE(own_key);
  ASSERT_TRUE(reg->claim(claim_as(jws, kBank, *own_key, bank->chain())));
  auto receipt = bank->transfer(jws);
  ASSERT_TRUE(receipt) << receipt.error().message();
  ASSERT_TRUE(bank->transfer(jws));
  EXPECT_EQ(balance("alice-cny"), 6000);
  EXPECT_EQ(balance("bob-cny"), 4000);
}

}  // namespace
}  // namespace zf::test
