// Crash and retry (DESIGN.md §3, §7): kill -9 an SE or the bank at a random
// moment during a burst of top-ups, payments and deposits, restart it, let the
// terminals retry, deliver every note, and check conservation after every round.
#include <random>
#include <set>
#include <thread>

#include "../crash_seed.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

class CrashTest : public NetworkTest {};

int rounds() {
  const char* env = std::getenv("ZF_CRASH_ROUNDS");
  return env ? std::atoi(env) : 24;
}

TEST_F(CrashTest, KillNineDuringOperationsConservesMoney) {
  const std::uint32_t seed = crash_seed();
  std::mt19937 rng(seed);
  SCOPED_TRACE(replay_line(seed));
  std::printf("crash test seed %u (%s)\n", seed, replay_line(seed).c_str());
  const std::vector<std::string> victims = {"se-alice", "se-bob", net_->bank_id};
  std::set<std::string> delivered;
  int kills = 0, ops_ok = 0, ops_failed = 0;

  for (int round = 0; round < rounds(); ++round) {
    std::string victim = victims[rng() % victims.size()];
    int delay_ms = static_cast<int>(rng() % 40);
    std::thread killer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      net_->kill9(victim);
    });
    {
      auto alice = terminal("alice");
      auto bob = terminal("bob");
      for (int op = 0; op < 6 && alice && bob; ++op) {
        std::int64_t minor = 100 + static_cast<std::int64_t>(rng() % 500);
        auto amount = *Amount::of("CNY", minor);
        bool ok = false;
        switch (rng() % 3) {
          case 0:
            ok = alice->topup(amount, net_->bank_id, se("alice").account).has_value();
            break;
          case 1:
            if (auto note = alice->pay(amount, se("bob").se_id)) {
              auto r = bob->receive(*note);
              ok = r.has_value();
            }
            break;
          case 2:
            ok = bob->deposit(amount, net_->bank_id, se("bob").account).has_value();
            break;
        }
        ok ? ++ops_ok : ++ops_failed;
      }
    }
    killer.join();
    ++kills;
    ASSERT_TRUE(net_->restart(victim)) << "restart " << victim;

    // Recovery: every terminal retries its outbox until nothing is pending.
    for (const char* user : {"alice", "bob"}) {
      for (int attempt = 0;; ++attempt) {
        auto w = terminal(user);
        ASSERT_TRUE(w) << user;
        auto r = w->retry();
        ASSERT_TRUE(r) << r.error().message();
        if ((*r)["pending"] == 0) {
          EXPECT_EQ((*r)["refused"], 0) << r->dump();
          break;
        }
        ASSERT_LT(attempt, 50) << r->dump();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    // Every note Alice's SE signed reaches Bob exactly once, even those whose
    // answer was lost in a crash (the retry adopted them from the SE).
    auto alice = terminal("alice");
    auto bob = terminal("bob");
    ASSERT_TRUE(alice && bob);
    for (const auto& e : alice->outbox()) {
      if (e.kind != "payment" || delivered.count(e.doc_id)) continue;
      auto r = bob->receive(e.doc);
      ASSERT_TRUE(r || r.error().code == Errc::replayed) << r.error().message();
      delivered.insert(e.doc_id);
    }
    Json report = audit();
    ASSERT_TRUE(report["ok"].get<bool>()) << "round " << round << " victim " << victim << "\n" << report.dump(2);
    EXPECT_EQ(report["system"]["CNY"]["notes_in_flight_minor"], 0) << report.dump(2);
  }
  std::printf("crash test: %d kills, %d operations completed, %d interrupted, seed %u\n", kills, ops_ok, ops_failed,
              seed);
  EXPECT_GE(kills, std::min(20, rounds()));
  EXPECT_GT(ops_ok, 0);
}

}  // namespace
}  // namespace zf::test
