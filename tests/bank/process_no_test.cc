// Designated processing numbers (DESIGN.md §6.10, docs/bank-api.md
// "Processing numbers"): the bank hands an SE a 128-bit number on a signed
// request; one document of that SE carrying it is taken, once, in the priority
// lane. Unknown, expired, used and someone else's numbers are refused by name.
#include <thread>

#include "bank/lanes.h"
#include "bank_registry_world.h"

namespace zf::test {
namespace {

class ProcessNoTest : public BankRegistryTest {
 protected:
  void SetUp() override {
    BankRegistryTest::SetUp();
    bob = enroll_se(src, world, "se-bob", "bob");
    bank->set_clock([this] { return clock; });
  }
  std::string issue(TestSigner& se, const std::string& account) {
    Json q = se.query(kBank, account);
    q["iat"] = clock;
    q["exp"] = clock + 300;
    auto n = bank->issue_process_no(se.sign(q));
    EXPECT_TRUE(n) << n.error().message();
    return n ? n->number : "";
  }
  std::string order(std::int64_t minor, const std::string& process_no) {
    Json o = alice.payload("transfer.order", Json{{"amount", minor},
                                                  {"currency", "CNY"},
                                                  {"from", "alice-cny"},
                                                  {"to", "bob-cny"},
                                                  {"bank", kBank},
                                                  {"process_no", process_no}});
    o["iat"] = clock;
    return alice.sign(o);
  }
  std::int64_t clock = std::time(nullptr);
  TestSigner bob;
};

TEST_F(ProcessNoTest, ANumberIsLongRandomAndTakesOneDocumentOnce) {
  std::string n = issue(alice, "alice-cny");
  ASSERT_EQ(n.size(), 3u + 22u) << "pn- and 128 bits in base64url";
  EXPECT_NE(issue(alice, "alice-cny"), n);
  std::string first = order(100, n);
  auto r = bank->transfer(first);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(balance("bob-cny"), 100);
  // The same document again: its receipt. Another document with the number: used.
  auto again = bank->transfer(first);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, *r);
  auto second = bank->transfer(order(200, n));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::process_no_used) << second.error().message();
  EXPECT_EQ(balance("bob-cny"), 100);
}

TEST_F(ProcessNoTest, UnknownExpiredAndAnotherSesNumbersAreRefused) {
  auto unknown = bank->transfer(order(100, "pn-AAAAAAAAAAAAAAAAAAAAAA"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::process_no_unknown);
  std::string bobs = issue(bob, "bob-cny");
  auto not_hers = bank->transfer(order(100, bobs));
  ASSERT_FALSE(not_hers);
  EXPECT_EQ(not_hers.error().code, Errc::not_owner);
  std::string n = issue(alice, "alice-cny");
  clock += bank::kProcessNoLifetimeS;
  auto expired = bank->transfer(order(100, n));
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code, Errc::process_no_expired);
  EXPECT_EQ(balance("alice-cny"), 10000);
  EXPECT_EQ(balance("bob-cny"), 0);
}

TEST_F(ProcessNoTest, TheRequestIsSignedByAnSeThatMayReadTheAccountAndAnsweredOnce) {
  Json q = bob.query(kBank, "alice-cny");
  q["iat"] = clock;
  q["exp"] = clock + 300;
  auto foreign = bank->issue_process_no(bob.sign(q));
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, Errc::not_owner);
  Json mine = alice.query(kBank, "alice-cny");
  mine["iat"] = clock;
  mine["exp"] = clock + 300;
  std::string jws = alice.sign(mine);
  ASSERT_TRUE(bank->issue_process_no(jws));
  auto replay = bank->issue_process_no(jws);
  ASSERT_FALSE(replay);
  EXPECT_EQ(replay.error().code, Errc::replayed);
}

// A top-up request is pending in its SE until a receipt answers it, and only a
// bank receipt makes the SE drop it (docs/bank-api.md "A refused top-up").
// The wallet now puts processing numbers into top-ups (`zf wallet topup
// --priority | --process-no N`): a number the bank will not take (made up,
// another SE's, used by another document, or expired while the request waited
// for a `retry`) must get a signed refusal too, or the SE keeps the request
// pending forever (16 of them and it tops up no more). Nothing moves.
TEST_F(ProcessNoTest, ATopUpWithANumberTheBankWillNotTakeGetsASignedRefusal) {
  auto topup_with = [&](const std::string& number) {
    Json t = alice.topup(kBank, "alice-cny", 100);
    t["iat"] = clock;
    t["process_no"] = number;
    return alice.sign(t);
  };
  // Handed out to Alice's SE more than 10 minutes ago (the registry's clock is the real one).
  const std::string stale = "pn-staleStaleStaleStale1";
  ASSERT_TRUE(bank->store().add_process_no({stale, "se-alice", clock - 1}, clock - bank::kProcessNoLifetimeS));
  std::string used = issue(alice, "alice-cny");
  ASSERT_TRUE(bank->transfer(order(100, used)));
  std::string bobs = issue(bob, "bob-cny");
  const std::int64_t before = balance("alice-cny");
  for (auto [number, reason] : {std::pair{std::string("pn-AAAAAAAAAAAAAAAAAAAAAA"), "process_no_unknown"},
                                std::pair{bobs, "not_owner"},
                                std::pair{used, "process_no_used"},
                                std::pair{stale, "process_no_expired"}}) {
    const std::string req = topup_with(number);
    auto r = bank->topup(req);
    ASSERT_TRUE(r) << reason << ": an unsigned " << r.error().message()
                   << " leaves the request pending in the SE for good";
    EXPECT_EQ(refusal_reason(*r), reason);
    auto again = bank->topup(req);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(*again, *r) << "the request is consumed: its retry gets the same refusal";
  }
  EXPECT_EQ(balance("alice-cny"), before);
}

// The same for a deposit note, for which the SE has already debited itself:
// the signed refusal gives the value back; nothing is credited.
TEST_F(ProcessNoTest, ADepositWithANumberTheBankWillNotTakeGetsASignedRefusal) {
  Json d = alice.deposit(kBank, "bob-cny", 100);
  d["iat"] = clock;
  d["process_no"] = "pn-AAAAAAAAAAAAAAAAAAAAAA";
  auto r = bank->deposit(alice.sign(d));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(refusal_reason(*r), "process_no_unknown");
  EXPECT_EQ(balance("bob-cny"), 0);
}

// The lane: with every place taken, a document with a number waiting goes in
// before one without that waited longer.
TEST(LanesTest, APriorityDocumentGoesInBeforeAnEarlierOrdinaryOne) {
  bank::Lanes lanes(1);
  std::vector<std::string> order;
  std::mutex mu;
  auto held = std::make_unique<bank::Lanes::Ticket>(lanes.enter(false));
  std::thread ordinary([&] {
    auto t = lanes.enter(false);
    std::lock_guard lock(mu);
    order.push_back("ordinary");
  });
  while (lanes.normal_waiting() == 0) std::this_thread::yield();
  std::thread priority([&] {
    auto t = lanes.enter(true);
    std::lock_guard lock(mu);
    order.push_back("priority");
  });
  while (lanes.priority_waiting() == 0) std::this_thread::yield();
  held.reset();  // the place comes free: both are waiting
  ordinary.join();
  priority.join();
  EXPECT_EQ(order, (std::vector<std::string>{"priority", "ordinary"}));
}

}  // namespace
}  // namespace zf::test
