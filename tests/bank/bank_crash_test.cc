// kill -9 the bank at random moments while a client streams top-ups and
// deposits; restart it on the same directory and resend every request whose
// receipt never arrived. Nothing may be lost or applied twice (DESIGN.md §7, §8).
#include <atomic>
#include <csignal>
#include <random>
#include <thread>

#include "../crash_seed.h"
#include "bank_process.h"

namespace zf::test {
namespace {

constexpr const char* kBank = BankProcesses::kBankId;

struct Op {
  std::string doc_id;
  bool topup = true;
  std::int64_t amount = 0;
  std::string jws;
  std::optional<std::string> receipt;
  int sends = 0;
};

// Sends ops in order until one fails to get an answer (the bank died) or `stop`.
// Any answer other than a receipt or "unavailable" is a test failure.
void send_ops(const std::string& url, const Certificate& root, std::vector<Op*> ops,
              const std::atomic<bool>& stop, std::atomic<int>& answered) {
  auto client = bank::BankClient::connect(url, root, BankProcesses::kBankId, {});
  ASSERT_TRUE(client);
  for (Op* op : ops) {
    if (stop.load()) return;
    ++op->sends;
    auto r = op->topup ? client->topup(op->jws) : client->deposit(op->jws);
    if (!r) {
      ASSERT_EQ(r.error().code, Errc::unavailable) << r.error().message();
      return;
    }
    if (op->receipt) {
      EXPECT_EQ(*op->receipt, *r) << "a resent request got another receipt";
    }
    op->receipt = *r;
    ++answered;
  }
}

TEST(BankCrashTest, KillNineDuringTopupsAndDepositsLosesNothing) {
  // A write to a connection the killed bank left behind must be an error, not a signal.
  std::signal(SIGPIPE, SIG_IGN);
  BankProcesses p;
  ASSERT_NO_FATAL_FAILURE(p.start_ca_and_init_bank());
  ASSERT_NO_FATAL_FAILURE(p.start_bank());
  TestSigner alice = p.enroll("se-alice", "alice");
  constexpr std::int64_t kInitial = 10'000'000;
  ASSERT_TRUE(p.admin().open_account({"alice-cny", "CNY", "alice", std::nullopt}));
  ASSERT_TRUE(p.admin().cash_in("alice-cny", *Amount::of("CNY", kInitial), "counter-1"));

  const unsigned seed = crash_seed();
  SCOPED_TRACE(replay_line(seed));
  std::printf("crash test seed %u (%s)\n", seed, replay_line(seed).c_str());
  std::mt19937 rng(seed);
  constexpr int kRounds = 30;
  constexpr int kNewOpsPerRound = 12;
  std::vector<Op> ops;
  ops.reserve(kRounds * kNewOpsPerRound);
  std::int64_t ecash = 0;  // what Alice's SE would hold if every op went through
  for (int i = 0; i < kRounds * kNewOpsPerRound; ++i) {
    Op op;
    op.topup = ecash < 500 || rng() % 3 != 0;
    op.amount = op.topup ? 1 + static_cast<std::int64_t>(rng() % 2000)
                         : 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint32_t>(ecash));
    ecash += op.topup ? op.amount : -op.amount;
    Json doc = op.topup ? alice.topup(kBank, "alice-cny", op.amount)
                        : alice.deposit(kBank, "alice-cny", op.amount);
    op.doc_id = doc["id"];
    op.jws = alice.sign(doc);
    ops.push_back(std::move(op));
  }

  // After a restart: requests the bank applied although their receipt never
  // reached the client (the kill fell between commit and reply). The unanswered
  // requests are the newest, so the owner's recent history shows them.
  int applied_unacknowledged = 0;
  auto count_applied_unacknowledged = [&] {
    auto st = p.anonymous().query(alice.sign(alice.query(kBank, "alice-cny")));
    ASSERT_TRUE(st) << st.error().message();
    for (const auto& h : st->history)
      for (const auto& op : ops)
        if (!op.receipt && op.doc_id == h.doc_id) ++applied_unacknowledged;
  };

  std::size_t next_new = 0;
  int kills = 0;
  for (int round = 0; round < kRounds; ++round) {
    // Every other incarnation holds its answers back for a while after the
    // movement committed, so that kills also land between commit and reply.
    if (round > 0) {
      ASSERT_NO_FATAL_FAILURE(
          p.start_bank(round % 2 ? std::vector<std::string>{"--fault-reply-delay-ms", "8"}
                                 : std::vector<std::string>{}));
      ASSERT_NO_FATAL_FAILURE(count_applied_unacknowledged());
    }
    // First everything unanswered so far (same JWS), then new requests.
    std::vector<Op*> batch;
    for (std::size_t i = 0; i < next_new; ++i)
      if (!ops[i].receipt) batch.push_back(&ops[i]);
    std::size_t end = std::min(ops.size(), next_new + kNewOpsPerRound);
    for (std::size_t i = next_new; i < end; ++i) batch.push_back(&ops[i]);
    next_new = end;

    // Kill after a random number of answers plus a random fraction of a request,
    // so the kill lands before, inside and after the bank's transaction.
    std::atomic<bool> stop{false};
    std::atomic<int> answered{0};
    const int target = static_cast<int>(rng() % 8);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::thread client([&] { send_ops(p.bank_url, p.world.root(), batch, stop, answered); });
    while (answered.load() < target && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 12000));
    p.bank.kill9();
    ++kills;
    stop = true;
    client.join();
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_EQ(kills, kRounds);

  // Final restart: resend whatever is still unanswered, and a few answered ones.
  ASSERT_NO_FATAL_FAILURE(p.start_bank());
  ASSERT_NO_FATAL_FAILURE(count_applied_unacknowledged());
  auto client = p.anonymous();
  int resent = 0;
  for (auto& op : ops) {
    if (op.receipt) continue;
    ++resent;
    auto r = op.topup ? client.topup(op.jws) : client.deposit(op.jws);
    ASSERT_TRUE(r) << r.error().message();
    op.receipt = *r;
  }
  for (std::size_t i = 0; i < ops.size(); i += 37) {
    auto r = ops[i].topup ? client.topup(ops[i].jws) : client.deposit(ops[i].jws);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, *ops[i].receipt);
  }

  std::int64_t topups = 0, deposits = 0;
  for (const auto& op : ops) (op.topup ? topups : deposits) += op.amount;
  EXPECT_EQ(p.balance(alice, "alice-cny"), kInitial - topups + deposits);
  auto audit = p.audit_ok();
  ASSERT_EQ(audit.currencies.size(), 1u);
  EXPECT_EQ(audit.currencies[0].issued_minor, kInitial);
  EXPECT_EQ(audit.currencies[0].ecash_outstanding_minor, topups - deposits);
  // One journal entry per op plus the cash-in: nothing was applied twice.
  EXPECT_EQ(audit.entries, ops.size() + 1);
  // The kills did land between commit and reply, so the resend path was exercised.
  EXPECT_GT(applied_unacknowledged, 0);
  int multi_sent = 0;
  for (const auto& op : ops) multi_sent += op.sends > 1;
  std::printf(
      "crash test: %d kills, %zu ops, %d sent more than once, %d applied but unacknowledged at a "
      "kill, %d resent "
      "after the last restart\n",
      kills, ops.size(), multi_sent, applied_unacknowledged, resent);
}

}  // namespace
}  // namespace zf::test
