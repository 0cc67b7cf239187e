// Exactly once (DESIGN.md §6.2, §7): the bank commits a top-up and dies before
// its answer leaves; `retry` sends the same signed request, gets the same
// receipt, and the SE credits once.
#include <filesystem>
#include <fstream>
#include <thread>

#include "bank/client.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

class ExactlyOnceTest : public NetworkTest {
 protected:
  std::vector<std::string> users() const override { return {"alice"}; }
  // Every bank answer is held back after the money moved, and the bank writes a
  // marker line once a handler has returned, so the test kills it after the
  // commit and before the answer, by signal rather than by guessing a delay.
  void customize(cli::NetworkOptions& o) const override {
    o.bank_args = {"--fault-reply-delay-ms", "1000", "--fault-answer-marker", marker().string()};
  }
  std::filesystem::path marker() const { return dir_ / "bank-answers"; }
  // Waits until the bank has answered `path` with `status` (inside the hold-back).
  bool wait_for_answer(const std::string& line, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(marker());
      for (std::string l; std::getline(in, l);)
        if (l == line) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  std::int64_t customer_total() { return audit()["banks"][0]["currencies"]["CNY"]["customer_minor"]; }
};

TEST_F(ExactlyOnceTest, CrashAfterCommitThenRetryCreditsOnce) {
  const std::int64_t customers_before = customer_total();
  Result<Json> first = fail(Errc::internal);
  std::thread client([&] {
    auto alice = terminal("alice");
    first = alice->topup(*Amount::parse("CNY 10.00"), net_->bank_id, se("alice").account);
  });
  bool committed = wait_for_answer("/v1/topup 200", std::chrono::seconds(20));
  net_->kill9(net_->bank_id);
  client.join();
  ASSERT_TRUE(committed) << "the bank never answered the top-up";
  ASSERT_FALSE(first) << "the answer should have been lost with the bank";
  EXPECT_EQ(first.error().code, Errc::unavailable) << first.error().message();
  EXPECT_EQ(se_balance("alice"), 0);

  ASSERT_TRUE(net_->restart(net_->bank_id));
  Json mid = audit();
  ASSERT_TRUE(mid["ok"].get<bool>()) << mid.dump(2);
  EXPECT_EQ(mid["system"]["CNY"]["topups_unapplied_minor"], 1000) << "the bank committed before it died";
  EXPECT_EQ(customer_total(), customers_before - 1000);

  auto alice = terminal("alice");
  auto r = alice->retry();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)["settled"], 1) << r->dump();
  EXPECT_EQ(se_balance("alice"), 1000);
  EXPECT_EQ(customer_total(), customers_before - 1000) << "debited once";

  // The bank answers the same request with the same receipt, byte for byte,
  // and the SE refuses to apply it a second time.
  auto entries = alice->outbox();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].state, "done");
  auto root = *Certificate::from_pem(alice->config().root_pem);
  auto bank = bank::BankClient::connect(net_->bank_url, root, net_->bank_id, {});
  auto again = bank->topup(entries[0].doc);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, entries[0].receipt);
  auto reapply = alice->se().apply_topup_receipt(*again);
  ASSERT_FALSE(reapply);
  EXPECT_EQ(reapply.error().code, Errc::replayed);

  auto second = alice->retry();
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["settled"], 0);
  EXPECT_EQ(se_balance("alice"), 1000);
  Json end = audit();
  EXPECT_TRUE(end["ok"].get<bool>()) << end.dump(2);
  EXPECT_EQ(end["system"]["CNY"]["topups_unapplied_minor"], 0);
}

}  // namespace
}  // namespace zf::test
