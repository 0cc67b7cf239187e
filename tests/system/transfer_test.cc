// Account transfer on a network of real processes (docs/bank-api.md "Account
// transfer"): `zf wallet transfer` signs the order in the SE and the bank moves
// the money once, even when the bank is killed with kill -9 after the
// registry recorded its claim and before its own transaction committed.
#include <filesystem>

#include "system_fixture.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;

class AccountTransferTest : public NetworkTest {
 protected:
  void customize(cli::NetworkOptions& o) const override {
    o.bank_args = {"--fault-die-after-claim", marker().string(), "--fault-die-after-claim-type", die_on_type()};
  }
  virtual std::string die_on_type() const { return "none"; }
  fs::path marker() const { return dir_ / "bank-killed"; }
  CmdResult transfer(const std::string& user, const std::string& amount, const std::string& from,
                     const std::string& to, std::vector<std::string> more = {}) {
    std::vector<std::string> args{"transfer", amount, "--bank", net_->bank_id, "--from", from, "--to", to};
    args.insert(args.end(), more.begin(), more.end());
    return zf_wallet(user, args);
  }
};

TEST_F(AccountTransferTest, MovesMoneyBetweenAccountsAndRefusesBadOrdersByName) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  CmdResult moved = transfer("alice", "CNY 25.00", alice, bob);
  ASSERT_EQ(moved.exit_code, 0) << moved.out;
  EXPECT_NE(moved.out.find("Moved CNY 25.00 from account " + alice + " to " + bob), std::string::npos) << moved.out;
  EXPECT_EQ(account_balance(alice), a0 - 2500);
  EXPECT_EQ(account_balance(bob), b0 + 2500);

  // Alice's SE may not sign for Bob's account.
  CmdResult not_hers = transfer("alice", "CNY 1.00", bob, alice);
  EXPECT_EQ(not_hers.exit_code, 2) << not_hers.out;
  EXPECT_NE(not_hers.out.find("the bank refused the transfer"), std::string::npos) << not_hers.out;
  EXPECT_NE(not_hers.out.find("not_owner"), std::string::npos) << not_hers.out;
  EXPECT_NE(not_hers.out.find("nothing moved"), std::string::npos) << not_hers.out;
  // More than the account holds: refused by the bank with its signed refusal.
  CmdResult too_much = transfer("alice", "CNY 1000000.00", alice, bob);
  EXPECT_EQ(too_much.exit_code, 2) << too_much.out;
  EXPECT_NE(too_much.out.find("insufficient_funds"), std::string::npos) << too_much.out;
  EXPECT_NE(too_much.out.find("no money moved"), std::string::npos) << too_much.out;
  // The same account on both sides: the SE signs nothing.
  CmdResult same = transfer("alice", "CNY 1.00", alice, alice);
  EXPECT_EQ(same.exit_code, 2) << same.out;
  EXPECT_NE(same.out.find("same_account"), std::string::npos) << same.out;
  // An account the bank does not have.
  CmdResult nowhere = transfer("alice", "CNY 1.00", alice, "nobody-main");
  EXPECT_EQ(nowhere.exit_code, 2) << nowhere.out;
  EXPECT_NE(nowhere.out.find("account_unknown"), std::string::npos) << nowhere.out;

  EXPECT_EQ(account_balance(alice), a0 - 2500);
  EXPECT_EQ(account_balance(bob), b0 + 2500);
  CmdResult history = zf_wallet("alice", {"history"});
  EXPECT_NE(history.out.find("transfer ordered (account to account)"), std::string::npos) << history.out;
  expect_audit_ok("after the transfers");
}

// Designated processing numbers through `zf wallet` (docs/bank-api.md
// "Processing numbers"): --priority asks the bank for one and the order
// carries it; a number is good for one document, and the bank's refusal of a
// used or unknown one is named, with no money moved.
TEST_F(AccountTransferTest, APriorityTransferCarriesAProcessingNumberThatServesOnce) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  CmdResult fast = transfer("alice", "CNY 2.00", alice, bob, {"--priority"});
  ASSERT_EQ(fast.exit_code, 0) << fast.out;
  EXPECT_NE(fast.out.find("Moved CNY 2.00"), std::string::npos) << fast.out;

  CmdResult got = zf_wallet("alice", {"process-no", "--bank", net_->bank_id, "--account", alice, "--json"});
  ASSERT_EQ(got.exit_code, 0) << got.out;
  auto number = parse_json_strict(got.out);
  ASSERT_TRUE(number) << got.out;
  const std::string pn = (*number)["process_no"];
  EXPECT_TRUE(pn.starts_with("pn-")) << pn;
  EXPECT_EQ((*number)["se"], se("alice").se_id);
  CmdResult once = transfer("alice", "CNY 3.00", alice, bob, {"--process-no", pn});
  ASSERT_EQ(once.exit_code, 0) << once.out;
  CmdResult twice = transfer("alice", "CNY 4.00", alice, bob, {"--process-no", pn});
  EXPECT_EQ(twice.exit_code, 2) << twice.out;
  EXPECT_NE(twice.out.find("process_no_used"), std::string::npos) << twice.out;
  EXPECT_NE(twice.out.find("no money moved"), std::string::npos) << twice.out;
  // Bob's SE may not use Alice's number, and a made-up one is unknown.
  CmdResult theirs = transfer("bob", "CNY 1.00", bob, alice, {"--process-no", pn});
  EXPECT_EQ(theirs.exit_code, 2) << theirs.out;
  EXPECT_NE(theirs.out.find("was handed to another SE (not_owner)"), std::string::npos) << theirs.out;
  CmdResult made_up = transfer("alice", "CNY 1.00", alice, bob, {"--process-no", "pn-" + std::string(32, 'a')});
  EXPECT_EQ(made_up.exit_code, 2) << made_up.out;
  EXPECT_NE(made_up.out.find("process_no_unknown"), std::string::npos) << made_up.out;

  EXPECT_EQ(account_balance(alice), a0 - 500);
  EXPECT_EQ(account_balance(bob), b0 + 500);
  expect_audit_ok("after the priority transfers");
}

// `zf wallet topup --process-no N` with a number the bank will not take (here
// a made-up one and one another document used): the SE signed a top-up request
// and keeps it pending until a bank receipt answers it. An unsigned refusal
// leaves it there for good (no retry can settle it, the terminal cannot drop
// it, and 16 of them stop the SE from topping up); a signed one lets it go.
TEST_F(AccountTransferTest, ATopUpRefusedForItsProcessingNumberLeavesNothingPendingInTheSe) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  auto pending = [&] {
    auto device = se::Device::open(se("alice").dir);
    EXPECT_TRUE(device);
    return device ? (*device)->applet().state_json()["pending_topups"] : Json();
  };
  const std::int64_t a0 = account_balance(alice), s0 = se_balance("alice");
  CmdResult made_up = zf_wallet("alice", {"topup", "CNY 1.00", "--bank", net_->bank_id, "--account", alice,
                                          "--process-no", "pn-" + std::string(22, 'b')});
  EXPECT_EQ(made_up.exit_code, 2) << made_up.out;
  EXPECT_NE(made_up.out.find("process_no_unknown"), std::string::npos) << made_up.out;
  EXPECT_EQ(pending(), Json::object()) << "the refused request stays pending in the SE";

  CmdResult got = zf_wallet("alice", {"process-no", "--bank", net_->bank_id, "--account", alice, "--json"});
  ASSERT_EQ(got.exit_code, 0) << got.out;
  const std::string pn = (*parse_json_strict(got.out))["process_no"];
  ASSERT_EQ(transfer("alice", "CNY 1.00", alice, bob, {"--process-no", pn}).exit_code, 0);
  CmdResult used = zf_wallet("alice", {"topup", "CNY 1.00", "--bank", net_->bank_id, "--account", alice,
                                       "--process-no", pn});
  EXPECT_EQ(used.exit_code, 2) << used.out;
  EXPECT_NE(used.out.find("process_no_used"), std::string::npos) << used.out;
  EXPECT_EQ(pending(), Json::object()) << "the refused request stays pending in the SE";
  CmdResult retry = zf_wallet("alice", {"retry"});
  EXPECT_EQ(pending(), Json::object()) << retry.out;

  EXPECT_EQ(account_balance(alice), a0 - 100);
  EXPECT_EQ(se_balance("alice"), s0);
  expect_audit_ok("after the refused top-ups");
}

class TransferCrashTest : public AccountTransferTest {
 protected:
  std::string die_on_type() const override { return "transfer.order"; }
};

TEST_F(TransferCrashTest, KillNineOfTheBankBetweenTheClaimAndTheCommitThenRetryMovesOnce) {
  const std::string alice = se("alice").account, bob = se("bob").account;
  const std::int64_t a0 = account_balance(alice), b0 = account_balance(bob);
  CmdResult first = transfer("alice", "CNY 40.00", alice, bob);
  EXPECT_NE(first.exit_code, 0) << first.out;
  ASSERT_TRUE(fs::exists(marker())) << "the bank died after the registry recorded its claim: " << first.out;
  EXPECT_NE(first.out.find("may or may not"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("zf wallet retry"), std::string::npos) << first.out;
  ASSERT_TRUE(net_->restart(net_->bank_id));
  EXPECT_EQ(account_balance(alice), a0) << "the bank's transaction never committed";
  CmdResult retried = zf_wallet("alice", {"retry"});
  EXPECT_EQ(retried.exit_code, 0) << retried.out;
  EXPECT_EQ(account_balance(alice), a0 - 4000);
  EXPECT_EQ(account_balance(bob), b0 + 4000);
  // Once: another retry has nothing left to send, and the order sent again by hand gets the same receipt.
  CmdResult again = zf_wallet("alice", {"retry"});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(account_balance(alice), a0 - 4000);
  EXPECT_EQ(account_balance(bob), b0 + 4000);
  expect_audit_ok("after the retry");
}

}  // namespace
}  // namespace zf::test
