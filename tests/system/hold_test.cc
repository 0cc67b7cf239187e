// Controlled transfer on a network of real processes (docs/bank-api.md
// "Holds", docs/wallet-cli.md "Holds"): `zf wallet hold request` on the
// payer's terminal, `cosign --submit` on the payee's, then confirm or release.
// A hold ends once when confirm and release race from two processes, when the
// bank was down at its release time, and when the bank is killed with kill -9
// after its registry claim of a confirm; the audit (hold accounts = open holds)
// is green after each.
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "system_fixture.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;

class HoldSystemTest : public NetworkTest {
 protected:
  void customize(cli::NetworkOptions& o) const override {
    o.bank_args = {"--hold-check-ms", "200", "--fault-die-after-claim", marker().string(),
                   "--fault-die-after-claim-type", die_on_type()};
  }
  virtual std::string die_on_type() const { return "none"; }
  fs::path marker() const { return dir_ / "bank-killed"; }
  // Alice asks to hold `amount` for Bob; Bob cosigns and sends it. The hold's id.
  std::string place(const std::string& amount, const std::string& release_in = "1h") {
    const std::string file = (dir_ / ("hold-" + std::to_string(++holds_) + ".jws")).string();
    CmdResult req = zf_wallet("alice", {"hold", "request", amount, "--bank", net_->bank_id, "--from", se("alice").account,
                                        "--to", se("bob").account, "--release-in", release_in, "--out", file, "--json"});
    EXPECT_EQ(req.exit_code, 0) << req.out;
    auto facts = parse_json_strict(req.out);
    EXPECT_TRUE(facts) << req.out;
    CmdResult sent = zf_wallet("bob", {"hold", "cosign", file, "--submit"});
    EXPECT_EQ(sent.exit_code, 0) << sent.out;
    EXPECT_NE(sent.out.find("is now held"), std::string::npos) << sent.out;
    return facts ? (*facts)["hold_id"].get<std::string>() : "";
  }
  int holds_ = 0;
};

TEST_F(HoldSystemTest, APayerConfirmsOneHoldAndThePayeeReleasesAnother) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  std::string first = place("CNY 30.00");
  EXPECT_EQ(account_balance(alice), a0 - 3000) << "the held money left the payer's account";
  EXPECT_EQ(account_balance(bob), b0);
  // The payee is told, though none of its money moved yet.
  CmdResult told = zf_wallet("bob", {"events", "--bank", net_->bank_id, "--account", bob});
  EXPECT_NE(told.out.find("held CNY 30.00"), std::string::npos) << told.out;
  EXPECT_NE(told.out.find(alice + " froze this for you until"), std::string::npos) << told.out;
  // Frozen money cannot be transferred.
  CmdResult spend = zf_wallet("alice", {"transfer", "CNY " + std::to_string((a0 - 3000) / 100 + 1) + ".00", "--bank",
                                        net_->bank_id, "--from", alice, "--to", bob});
  EXPECT_EQ(spend.exit_code, 2) << spend.out;
  EXPECT_NE(spend.out.find("insufficient_funds"), std::string::npos) << spend.out;
  expect_audit_ok("with a hold open");
  // The audit names the open hold that the hold account's balance is made of.
  Json books = audit()["banks"][0];
  EXPECT_EQ(books["currencies"]["CNY"]["hold_minor"], 3000) << books.dump(2);
  ASSERT_EQ(books["open_holds"].size(), 1u) << books.dump(2);
  EXPECT_EQ(books["open_holds"][0]["hold_id"], first);
  EXPECT_EQ(books["open_holds"][0]["payee_account"], bob);
  EXPECT_EQ(books["open_holds"][0]["amount_minor"], 3000);

  // Only the payer confirms: Bob's terminal refuses to confirm, Bob's SE would too.
  CmdResult wrong = zf_wallet("bob", {"hold", "confirm", first});
  EXPECT_EQ(wrong.exit_code, 2) << wrong.out;
  EXPECT_NE(wrong.out.find("not_owner"), std::string::npos) << wrong.out;
  CmdResult paid = zf_wallet("alice", {"hold", "confirm", first});
  ASSERT_EQ(paid.exit_code, 0) << paid.out;
  EXPECT_NE(paid.out.find("Paid CNY 30.00 from hold " + first + " to " + bob), std::string::npos) << paid.out;
  EXPECT_EQ(account_balance(bob), b0 + 3000);
  CmdResult late = zf_wallet("bob", {"hold", "release", first});
  EXPECT_EQ(late.exit_code, 2) << late.out;
  EXPECT_NE(late.out.find("hold_resolved"), std::string::npos) << late.out;
  EXPECT_NE(late.out.find("confirmed"), std::string::npos) << late.out;

  std::string second = place("CNY 12.00");
  CmdResult back = zf_wallet("bob", {"hold", "release", second});
  ASSERT_EQ(back.exit_code, 0) << back.out;
  EXPECT_NE(back.out.find("Gave CNY 12.00 from hold " + second + " back to " + alice), std::string::npos) << back.out;
  EXPECT_EQ(account_balance(alice), a0 - 3000);
  EXPECT_EQ(account_balance(bob), b0 + 3000);
  expect_audit_ok("after both holds ended");
}

// Two terminal processes, the payer's confirm and the payee's release, sent at
// once for each hold: one wins every time, the other is told hold_resolved.
TEST_F(HoldSystemTest, ConfirmAndReleaseRacingFromTwoProcessesEndEachHoldOnce) {
  constexpr int kRounds = 20;
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  int confirmed = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::string id = place("CNY 1.00");
    auto c = std::async(std::launch::async, [&] { return zf_wallet("alice", {"hold", "confirm", id}); });
    auto r = std::async(std::launch::async, [&] { return zf_wallet("bob", {"hold", "release", id}); });
    CmdResult cr = c.get(), rr = r.get();
    EXPECT_EQ((cr.exit_code == 0) + (rr.exit_code == 0), 1) << "round " << round << ":\n" << cr.out << rr.out;
    const CmdResult& loser = cr.exit_code == 0 ? rr : cr;
    EXPECT_NE(loser.out.find("hold_resolved"), std::string::npos) << loser.out;
    confirmed += cr.exit_code == 0;
  }
  EXPECT_EQ(account_balance(bob), b0 + confirmed * 100);
  EXPECT_EQ(account_balance(alice), a0 - confirmed * 100);
  expect_audit_ok("after the races");
}

// The bank gives a hold back by itself at its release time, also when it was
// down then: on restart its first look finds the hold due.
TEST_F(HoldSystemTest, AHoldPastItsReleaseTimeGoesBackEvenIfTheBankWasDownThen) {
  const std::string alice = se("alice").account;
  const std::int64_t a0 = account_balance(alice);
  std::string id = place("CNY 5.00", "6s");
  EXPECT_EQ(account_balance(alice), a0 - 500);
  net_->kill9(net_->bank_id);
  std::this_thread::sleep_for(std::chrono::seconds(7));  // past the release time, bank down
  ASSERT_TRUE(net_->restart(net_->bank_id));
  std::int64_t now_balance = account_balance(alice);
  for (int i = 0; i < 50 && now_balance != a0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    now_balance = account_balance(alice);
  }
  EXPECT_EQ(now_balance, a0) << "the expired hold went back to the payer";
  CmdResult confirm = zf_wallet("alice", {"hold", "confirm", id});
  EXPECT_EQ(confirm.exit_code, 2) << confirm.out;
  EXPECT_NE(confirm.out.find("expired"), std::string::npos) << confirm.out;
  EXPECT_EQ(account_balance(alice), a0);
  expect_audit_ok("after the expiry");
}

class HoldCrashTest : public HoldSystemTest {
 protected:
  std::string die_on_type() const override { return "hold.confirm"; }
};

TEST_F(HoldCrashTest, KillNineOfTheBankAfterItClaimedAConfirmThenRetryPaysOnce) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  std::string id = place("CNY 8.00");
  CmdResult first = zf_wallet("alice", {"hold", "confirm", id});
  EXPECT_NE(first.exit_code, 0) << first.out;
  ASSERT_TRUE(fs::exists(marker())) << first.out;
  EXPECT_NE(first.out.find("zf wallet retry"), std::string::npos) << first.out;
  ASSERT_TRUE(net_->restart(net_->bank_id));
  EXPECT_EQ(account_balance(bob), b0) << "the confirm's transaction never committed";
  expect_audit_ok("after the crash, the hold still open");
  CmdResult retried = zf_wallet("alice", {"retry"});
  EXPECT_EQ(retried.exit_code, 0) << retried.out;
  EXPECT_EQ(account_balance(bob), b0 + 800);
  EXPECT_EQ(account_balance(alice), a0 - 800);
  CmdResult late = zf_wallet("bob", {"hold", "release", id});
  EXPECT_EQ(late.exit_code, 2) << late.out;
  CmdResult again = zf_wallet("alice", {"retry"});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(account_balance(bob), b0 + 800);
  expect_audit_ok("after the retry");
}

}  // namespace
}  // namespace zf::test
