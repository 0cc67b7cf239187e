// Result notifications (the patent's S38/S67, docs/bank-api.md "Events"): an
// account's feed lists what moved on it, in order, with the bank's signed
// receipts; the payee sees an incoming transfer without asking the payer, and
// no one reads another's feed.
#include "hold_world.h"

namespace zf::test {
namespace {

class EventsTest : public HoldWorld {
 protected:
  Result<Feed> feed(TestSigner& se, const std::string& account, std::int64_t after = 0) {
    return bank->events(se.sign(se.query(kBank, account)), after);
  }
  // The feed's items after `after`, as "kind amount held" strings.
  std::vector<std::string> items(TestSigner& se, const std::string& account, std::int64_t after) {
    auto f = feed(se, account, after);
    EXPECT_TRUE(f) << f.error().message();
    std::vector<std::string> out;
    if (f)
      for (const auto& e : f->events)
        out.push_back(e.kind + " " + std::to_string(e.amount_minor) + " " + std::to_string(e.held_minor));
    return out;
  }
  std::int64_t last(TestSigner& se, const std::string& account) {
    auto f = feed(se, account, 0);
    return f ? f->next : -1;
  }
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

// Both sides hear of each step of a hold: the payee when money is frozen for
// it (a notice: none of its money moved), the payer when it is confirmed, the
// payee when it goes back, by release or by expiry.
TEST_F(EventsTest, EachSideOfAHoldIsToldOfEachStep) {
  const std::int64_t a0 = last(alice, "alice-cny"), b0 = last(bob, "bob-cny");
  const std::string h1 = place(1500);
  EXPECT_EQ(items(alice, "alice-cny", a0), (std::vector<std::string>{"hold -1500 0"}));
  EXPECT_EQ(items(bob, "bob-cny", b0), (std::vector<std::string>{"hold 0 1500"}));
  auto bobs = feed(bob, "bob-cny", b0);
  ASSERT_TRUE(bobs && bobs->events.size() == 1);
  const Document placed = receipt_doc(bobs->events[0].receipt);
  EXPECT_EQ(placed.str("status"), "held");
  EXPECT_EQ(placed.str("payer_account"), "alice-cny");

  ASSERT_TRUE(bank->hold_confirm(end_doc(alice, "hold.confirm", h1, 1500)));
  EXPECT_EQ(items(alice, "alice-cny", a0), (std::vector<std::string>{"hold -1500 0", "hold_confirm 0 1500"}));
  EXPECT_EQ(items(bob, "bob-cny", b0), (std::vector<std::string>{"hold 0 1500", "hold_confirm 1500 0"}));

  const std::int64_t a1 = last(alice, "alice-cny"), b1 = last(bob, "bob-cny");
  const std::string h2 = place(200);
  ASSERT_TRUE(bank->hold_release(end_doc(bob, "hold.release", h2, 200)));
  const std::string h3 = place(300, 10);
  clock += 11;
  auto pass = bank->expire_holds();
  ASSERT_TRUE(pass);
  EXPECT_EQ(pass->ended, 1);
  EXPECT_EQ(items(alice, "alice-cny", a1),
            (std::vector<std::string>{"hold -200 0", "hold_release 200 0", "hold -300 0", "hold_expiry 300 0"}));
  EXPECT_EQ(items(bob, "bob-cny", b1),
            (std::vector<std::string>{"hold 0 200", "hold_release 0 200", "hold 0 300", "hold_expiry 0 300"}));
  // The third party's feed is untouched, and it still may not read theirs.
  auto carols = feed(carol, "bob-cny");
  ASSERT_FALSE(carols);
  EXPECT_EQ(carols.error().code, Errc::not_owner);
  expect_books(10000 - 1500 - 200 - 300 + 200 + 300, 1500, 0);
}

// The listener that wakes waiting readers hears each account of a new entry,
// once: a retried document moves nothing and wakes no one.
TEST_F(EventsTest, TheFeedListenerHearsEachNewEntrysAccountsOnce) {
  std::vector<std::string> heard;
  bank->set_feed_listener([&](const std::string& account) { heard.push_back(account); });
  Json o = alice.payload("transfer.order",
                         Json{{"amount", 100}, {"currency", "CNY"}, {"from", "alice-cny"}, {"to", "bob-cny"}, {"bank", kBank}});
  const std::string order = alice.sign(o);
  ASSERT_TRUE(bank->transfer(order));
  std::sort(heard.begin(), heard.end());
  EXPECT_EQ(heard, (std::vector<std::string>{"alice-cny", "bob-cny"}));
  ASSERT_TRUE(bank->transfer(order));
  EXPECT_EQ(heard.size(), 2u) << "a replay wakes no one";
  heard.clear();
  place(100);
  std::sort(heard.begin(), heard.end());
  EXPECT_EQ(heard, (std::vector<std::string>{"alice-cny", "bob-cny", ledger::hold_account_id("CNY")}));
}

}  // namespace
}  // namespace zf::test
