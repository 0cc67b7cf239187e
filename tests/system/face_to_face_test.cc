// Face-to-face payment on a network of real processes (issue 10): two SE
// processes find each other in the nearby directory and pay over their
// short-range port with the CA, the bank and the registry stopped; kill -9 of
// either SE in the middle of a payment, then recovery through the payee's
// signed answer. After each round every payment's value is in exactly one
// place and the audit holds.
#include <filesystem>
#include <future>
#include <random>
#include <thread>

#include "../crash_seed.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

namespace fs = std::filesystem;

class FaceToFaceTest : public NetworkTest {
 protected:
  void SetUp() override {
    NetworkTest::SetUp();
    if (HasFatalFailure()) return;
    auto alice = terminal("alice");
    ASSERT_TRUE(alice);
    ASSERT_TRUE(alice->topup(*Amount::of("CNY", 10000), net_->bank_id, se("alice").account));
  }
  fs::path nearby() const { return fs::path(se("bob").dir).parent_path() / "nearby"; }
  // Waits until bob's SE announces itself (its terminal ran F2F RECEIVE).
  bool announced(const std::string& user) {
    for (int i = 0; i < 100; ++i) {
      if (fs::exists(nearby() / (se(user).se_id + ".json"))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  std::vector<std::string> servers() const { return {"ca", "registry", net_->bank_id}; }
  void stop_servers() {
    for (const auto& name : servers()) net_->kill9(name);
  }
  void start_servers() {
    for (const auto& name : servers()) ASSERT_TRUE(net_->restart(name)) << name;
  }
  // Every undelivered payment of alice's, ended by bob's signed answer: a
  // refusal for one bob never took, his receipt again for one he did.
  void settle_undelivered() {
    auto out = dir_ / "undelivered";
    CmdResult list = zf_wallet("alice", {"undelivered", "--out", out.string()});
    ASSERT_EQ(list.exit_code, 0) << list.out;
    if (!fs::exists(out)) return;
    std::vector<fs::path> payments(fs::directory_iterator(out), fs::directory_iterator{});
    for (const auto& f : payments) {
      auto answer = (dir_ / "answer.jws").string();
      CmdResult refused = zf_wallet("bob", {"refuse", f.string(), "--out", answer});
      ASSERT_EQ(refused.exit_code, 0) << refused.out;
      CmdResult closed = zf_wallet("alice", {"answer", answer});
      ASSERT_EQ(closed.exit_code, 0) << closed.out;
      fs::remove(f);
      fs::remove(answer);
    }
  }
};

TEST_F(FaceToFaceTest, APaymentMovesWithTheCaTheBankAndTheRegistryStopped) {
  stop_servers();
  auto bob = std::async(std::launch::async, [&] { return zf_wallet("bob", {"receive-nearby", "--for", "60s"}); });
  ASSERT_TRUE(announced("bob"));
  CmdResult paid = zf_wallet("alice", {"pay-nearby", "CNY 12.50", "--to", se("bob").se_id, "--yes"});
  CmdResult got = bob.get();
  EXPECT_EQ(paid.exit_code, 0) << paid.out;
  EXPECT_NE(paid.out.find("Paid CNY 12.50 to se-bob face to face"), std::string::npos) << paid.out;
  EXPECT_EQ(got.exit_code, 0) << got.out;
  EXPECT_NE(got.out.find("Received CNY 12.50 from se-alice face to face"), std::string::npos) << got.out;
  // Both terminals showed the same code.
  auto code_at = paid.out.find("code ");
  ASSERT_NE(code_at, std::string::npos);
  EXPECT_NE(got.out.find(paid.out.substr(code_at, 11)), std::string::npos) << paid.out << "\n" << got.out;
  EXPECT_EQ(se_balance("alice"), 8750);
  EXPECT_EQ(se_balance("bob"), 1250);

  start_servers();
  expect_audit_ok("after the payment");
  // Until bob settles online, his SE will not spend it online.
  CmdResult early = zf_wallet("bob", {"pay", "CNY 1.00", "--to", se("alice").se_id, "--out", (dir_ / "n").string()});
  EXPECT_NE(early.exit_code, 0) << early.out;
  EXPECT_NE(early.out.find("unreconciled"), std::string::npos) << early.out;
  CmdResult settled = zf_wallet("bob", {"reconcile"});
  EXPECT_EQ(settled.exit_code, 0) << settled.out;
  EXPECT_NE(settled.out.find("Settled CNY 12.50 from se-alice"), std::string::npos) << settled.out;
  CmdResult spend = zf_wallet("bob", {"pay", "CNY 1.00", "--to", se("alice").se_id, "--out", (dir_ / "n").string()});
  EXPECT_EQ(spend.exit_code, 0) << spend.out;
  expect_audit_ok("after settling");
}

// Bob's SE dies after the key agreement, before the payment arrives: alice's
// SE has debited and holds the payment as undelivered, the audit sees it in
// flight, and bob's signed refusal brings it back once.
TEST_F(FaceToFaceTest, KillNineOfThePayeeBeforeThePaymentLeavesItUndeliveredUntilItsRefusal) {
  auto bob = std::async(std::launch::async, [&] {
    auto w = terminal("bob");
    return w ? w->receive_nearby(30) : Result<Json>(std::unexpected(Error{Errc::internal, "", "no terminal"}));
  });
  ASSERT_TRUE(announced("bob"));
  auto alice = terminal("alice");
  ASSERT_TRUE(alice);
  auto r = alice->pay_nearby(*Amount::of("CNY", 3000), se("bob").se_id, [&](const Json&) {
    net_->kill9(se("bob").se_id);
    return true;
  });
  (void)bob.get();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)["outcome"], "undelivered") << r->dump();
  alice.reset();
  ASSERT_TRUE(net_->restart(se("bob").se_id));
  EXPECT_EQ(se_balance("alice"), 7000);
  EXPECT_EQ(se_balance("bob"), 0);
  Json a = audit();
  EXPECT_TRUE(a["ok"].get<bool>()) << a.dump(2);
  ASSERT_EQ(a["notes"]["not_received"].size(), 1u) << a.dump(2);
  EXPECT_EQ(a["notes"]["not_received"][0]["state"], "undelivered_face_to_face");
  CmdResult listed = zf_wallet("alice", {"balance"});
  EXPECT_NE(listed.out.find("Paid face to face with no answer yet: CNY 30.00"), std::string::npos) << listed.out;

  settle_undelivered();
  EXPECT_EQ(se_balance("alice"), 10000);
  EXPECT_EQ(se_balance("bob"), 0);
  expect_audit_ok("after the refusal");
  // The value back is settled at the registry before it is spent online.
  CmdResult settled = zf_wallet("alice", {"reconcile"});
  ASSERT_EQ(settled.exit_code, 0) << settled.out;
  EXPECT_NE(settled.out.find("Settled CNY 30.00"), std::string::npos) << settled.out;
  EXPECT_EQ(se_balance("alice"), 10000);
  expect_audit_ok("after the payer settled its refund");
}

// Seeded rounds: either SE is killed at a random moment of a face-to-face
// payment. Whatever the moment, after recovery the value is once in alice's
// SE or once in bob's, and the audit holds.
TEST_F(FaceToFaceTest, KillNineOfEitherSeAtRandomMomentsNeverLosesOrDoublesValue) {
  const std::uint32_t seed = crash_seed();
  std::printf("seed %u (%s)\n", seed, replay_line(seed).c_str());
  std::mt19937 rng(seed);
  const int rounds = 10;
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round) + ", " + replay_line(seed));
    const std::string victim = rng() % 2 ? "alice" : "bob";
    // A whole payment takes about 20 ms here: the kill lands anywhere in it.
    const int delay_us = static_cast<int>(rng() % 25000);
    const std::int64_t total = se_balance("alice") + se_balance("bob");
    auto bob = std::async(std::launch::async, [&] { return zf_wallet("bob", {"receive-nearby", "--for", "4s"}); });
    ASSERT_TRUE(announced("bob"));
    auto killer = std::async(std::launch::async, [&] {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      net_->kill9(se(victim).se_id);
    });
    const auto t0 = std::chrono::steady_clock::now();
    CmdResult paid = zf_wallet("alice", {"pay-nearby", "CNY 1.00", "--to", se("bob").se_id, "--yes"});
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    killer.get();
    std::printf("round %d: killed %s after %d us; the payment took %lld ms: %s", round, victim.c_str(), delay_us,
                static_cast<long long>(took.count()), paid.out.substr(paid.out.rfind('\n', paid.out.size() - 2) + 1).c_str());
    ASSERT_TRUE(net_->restart(se(victim).se_id));
    (void)bob.get();
    fs::remove(nearby() / (se("bob").se_id + ".json"));
    settle_undelivered();
    EXPECT_EQ(se_balance("alice") + se_balance("bob"), total) << "killed " << victim << " after " << delay_us << " us";
    expect_audit_ok("round " + std::to_string(round));
  }
}

}  // namespace
}  // namespace zf::test
