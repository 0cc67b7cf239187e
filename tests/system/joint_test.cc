// Joint accounts on a network of real processes (docs/bank-api.md "Joint
// accounts"): `zf up` opens alice-bob-joint, co-managed by Alice's and Bob's
// SEs, all of whom must sign. One asks (`zf wallet joint request`), the other
// signs the same file (`joint sign`), either sends it (`joint submit`).
#include <filesystem>

#include "system_fixture.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;

class JointSystemTest : public NetworkTest {
 protected:
  std::vector<std::string> users() const override { return {"alice", "bob", "carol"}; }
  std::string joint() const { return cli::joint_account_id("alice", "bob"); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
};

TEST_F(JointSystemTest, ATransferNeedsBothCoManagersAndAStrangersSignatureIsRefused) {
  const std::int64_t j0 = account_balance(joint()), c0 = account_balance(se("carol").account);
  const std::string spend = file("spend.jws");
  CmdResult asked = zf_wallet("alice", {"joint", "request", "CNY 20.00", "--bank", net_->bank_id, "--account", joint(),
                                        "--to", se("carol").account, "--out", spend});
  ASSERT_EQ(asked.exit_code, 0) << asked.out;
  EXPECT_NE(asked.out.find("nothing has moved yet"), std::string::npos) << asked.out;
  // Alice's signature alone is not enough.
  CmdResult alone = zf_wallet("alice", {"joint", "submit", spend});
  EXPECT_EQ(alone.exit_code, 2) << alone.out;
  EXPECT_NE(alone.out.find("threshold_not_met"), std::string::npos) << alone.out;
  EXPECT_NE(alone.out.find("nothing moved"), std::string::npos) << alone.out;
  // Carol is no co-manager: her SE signs a copy, the bank refuses it.
  fs::copy_file(spend, file("spend-carol.jws"));
  CmdResult carol = zf_wallet("carol", {"joint", "sign", file("spend-carol.jws")});
  ASSERT_EQ(carol.exit_code, 0) << carol.out;
  CmdResult stranger = zf_wallet("carol", {"joint", "submit", file("spend-carol.jws")});
  EXPECT_EQ(stranger.exit_code, 2) << stranger.out;
  EXPECT_NE(stranger.out.find("not_owner"), std::string::npos) << stranger.out;
  EXPECT_EQ(account_balance(joint()), j0);

  CmdResult signed_by_bob = zf_wallet("bob", {"joint", "sign", spend});
  ASSERT_EQ(signed_by_bob.exit_code, 0) << signed_by_bob.out;
  EXPECT_NE(signed_by_bob.out.find("2 signatures"), std::string::npos) << signed_by_bob.out;
  CmdResult sent = zf_wallet("bob", {"joint", "submit", spend});
  ASSERT_EQ(sent.exit_code, 0) << sent.out;
  EXPECT_NE(sent.out.find("Moved CNY 20.00 from joint account " + joint() + " to " + se("carol").account),
            std::string::npos)
      << sent.out;
  EXPECT_EQ(account_balance(joint()), j0 - 2000);
  EXPECT_EQ(account_balance(se("carol").account), c0 + 2000);
  // Sent again, by the other co-manager: the same receipt, nothing more moves.
  CmdResult again = zf_wallet("alice", {"joint", "submit", spend});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(account_balance(joint()), j0 - 2000);
  // No single SE transfers from the joint account.
  CmdResult single = zf_wallet("alice", {"transfer", "CNY 1.00", "--bank", net_->bank_id, "--from", joint(), "--to",
                                         se("alice").account});
  EXPECT_EQ(single.exit_code, 2) << single.out;
  EXPECT_NE(single.out.find("not_owner"), std::string::npos) << single.out;
  expect_audit_ok("after the joint transfer");
}

TEST_F(JointSystemTest, ATopUpFromTheJointAccountGoesIntoTheAskersSe) {
  const std::int64_t j0 = account_balance(joint()), bob0 = se_balance("bob"), alice0 = se_balance("alice");
  const std::string spend = file("topup.jws");
  CmdResult asked = zf_wallet("bob", {"joint", "request", "CNY 10.00", "--bank", net_->bank_id, "--account", joint(),
                                      "--topup", "--out", spend});
  ASSERT_EQ(asked.exit_code, 0) << asked.out;
  ASSERT_EQ(zf_wallet("alice", {"joint", "sign", spend}).exit_code, 0);
  // Alice sends it: the bank moves the money, Bob's SE has yet to add it.
  CmdResult by_alice = zf_wallet("alice", {"joint", "submit", spend});
  ASSERT_EQ(by_alice.exit_code, 0) << by_alice.out;
  EXPECT_NE(by_alice.out.find("se-bob"), std::string::npos) << by_alice.out;
  EXPECT_EQ(account_balance(joint()), j0 - 1000);
  EXPECT_EQ(se_balance("alice"), alice0);
  CmdResult by_bob = zf_wallet("bob", {"joint", "submit", spend});
  ASSERT_EQ(by_bob.exit_code, 0) << by_bob.out;
  EXPECT_NE(by_bob.out.find("Topped up this SE with CNY 10.00"), std::string::npos) << by_bob.out;
  EXPECT_EQ(se_balance("bob"), bob0 + 1000);
  // Once: sending it again adds nothing.
  CmdResult again = zf_wallet("bob", {"joint", "submit", spend});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(se_balance("bob"), bob0 + 1000);
  EXPECT_EQ(account_balance(joint()), j0 - 1000);
  expect_audit_ok("after the joint top-up");
}

}  // namespace
}  // namespace zf::test
