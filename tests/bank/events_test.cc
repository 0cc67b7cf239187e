// Result notifications (the patent's S38/S67, docs/bank-api.md "Events"): an
// account's feed lists what moved on it, in order, with the bank's signed
// receipts; the payee sees an incoming transfer without asking the payer, and
// no one reads another's feed.
#include "bank_registry_world.h"

namespace zf::test {
namespace {

class EventsTest : public BankRegistryTest {
 protected:
  void SetUp() override {
    BankRegistryTest::SetUp();
    bob = enroll_se(src, world, "se-bob", "bob");
  }
  Result<Feed> feed(TestSigner& se, const std::string& account, std::int64_t after = 0) {
    return bank->events(se.sign(se.query(kBank, account)), after);
  }
  TestSigner bob;
};

TEST_F(EventsTest, ThePayeeSeesTheIncomingTransferWithItsSignedReceipt) {
  Json o = alice.payload("transfer.order",
                         Json{{"amount", 2500}, {"currency", "CNY"}, {"from", "alice-cny"}, {"to", "bob-cny"}, {"bank", kBank}});
  auto receipt = bank->transfer(alice.sign(o));
  ASSERT_TRUE(receipt) << receipt.error().message();
  auto bobs = feed(bob, "bob-cny");
  ASSERT_TRUE(bobs) << bobs.error().message();
  ASSERT_EQ(bobs->events.size(), 1u);
  const FeedItem& e = bobs->events.front();
  EXPECT_EQ(e.kind, "transfer");
  EXPECT_EQ(e.amount_minor, 2500);
  EXPECT_EQ(e.doc_id, o["id"]);
  EXPECT_EQ(e.receipt, *receipt) << "the very receipt the payer got";
  EXPECT_EQ(bobs->currency, "CNY");
  // Alice's feed: the cash-in, then the transfer out.
  auto alices = feed(alice, "alice-cny");
  ASSERT_TRUE(alices);
  ASSERT_EQ(alices->events.size(), 2u);
  EXPECT_EQ(alices->events[0].kind, "cash_in");
  EXPECT_EQ(alices->events[1].amount_minor, -2500);
  // After the last position: nothing new, and the position stays.
  auto later = feed(bob, "bob-cny", bobs->next);
  ASSERT_TRUE(later);
  EXPECT_TRUE(later->events.empty());
  EXPECT_EQ(later->next, bobs->next);
}

TEST_F(EventsTest, NoOneReadsAnothersFeedAndAQueryAnswersOnce) {
  auto hers = feed(bob, "alice-cny");
  ASSERT_FALSE(hers);
  EXPECT_EQ(hers.error().code, Errc::not_owner);
  std::string q = alice.sign(alice.query(kBank, "alice-cny"));
  ASSERT_TRUE(bank->events(q, 0));
  auto again = bank->events(q, 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::replayed);
  auto unknown = feed(alice, "nobody-cny");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::account_unknown);
}

}  // namespace
}  // namespace zf::test
