// kill -9 the registry at random moments while two processors race claims on
// the same document ids; restart it on the same directory. Every answer a
// processor received must still hold: the stored record names the processor
// the answer named, and "claimed" answers are the stored bytes (DESIGN.md §7, §8).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <map>
#include <random>
#include <thread>

#include "../crash_seed.h"
#include "registry_process.h"

namespace zf::test {
namespace {

using registry::RecordStatus;

struct Answer {
  std::string doc_id;
  std::string claim;  // kept for the resend after a restart
  std::optional<std::string> record;
};

// Claims in order until one gets no answer (the registry died). Any answer other
// than a record or "unavailable" is a test failure.
void send_claims(const std::string& url, const Certificate& root, std::vector<Answer*> work,
                 std::atomic<int>& answered) {
  auto client = registry::RegistryClient::connect(url, root, RegistryProcesses::kRegistryId, {});
  ASSERT_TRUE(client);
  for (Answer* a : work) {
    auto r = client->claim(a->claim);
    if (!r) {
      ASSERT_EQ(r.error().code, Errc::unavailable) << r.error().message();
      return;
    }
    a->record = *r;
    ++answered;
  }
}

TEST(RegistryCrashTest, KillNineLosesNoAnsweredClaim) {
  std::signal(SIGPIPE, SIG_IGN);
  RegistryProcesses p;
  ASSERT_NO_FATAL_FAILURE(p.start_ca_and_init_registry());
  ASSERT_NO_FATAL_FAILURE(p.start_registry());
  Processor procs[2] = {p.bank("bank-a"), p.bank("bank-b")};

  const unsigned seed = crash_seed();
  SCOPED_TRACE(replay_line(seed));
  std::printf("crash test seed %u (%s)\n", seed, replay_line(seed).c_str());
  std::mt19937 rng(seed);
  constexpr int kRounds = 5, kDocsPerRound = 40;
  // answers[t][i]: processor t's claim on document i.
  std::vector<Answer> answers[2];
  for (auto& a : answers) a.reserve(kRounds * kDocsPerRound);
  int next_doc = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<Answer*> work[2];
    for (int i = 0; i < kDocsPerRound; ++i, ++next_doc) {
      std::string doc = "crash-" + std::to_string(next_doc);
      for (int t = 0; t < 2; ++t) {
        answers[t].push_back(Answer{doc, procs[t].claim(doc, procs[t].id), std::nullopt});
        work[t].push_back(&answers[t].back());
      }
    }
    std::atomic<int> answered{0};
    std::thread senders[2];
    for (int t = 0; t < 2; ++t)
      senders[t] = std::thread(send_claims, p.reg_url, p.world.root(), work[t], std::ref(answered));
    // Let some claims through, then kill -9 in the middle of the stream.
    std::this_thread::sleep_for(std::chrono::milliseconds(60 + rng() % 240));
    p.reg.kill9();
    for (auto& s : senders) s.join();
    ASSERT_NO_FATAL_FAILURE(p.start_registry());
    std::fprintf(stderr, "round %d: %d answers before the kill\n", round, answered.load());
  }

  // After the last restart: every answer still holds.
  auto client = p.admin();
  int claimed_answers = 0, checked = 0;
  for (std::size_t i = 0; i < answers[0].size(); ++i) {
    const std::string& doc = answers[0][i].doc_id;
    auto stored = client.query(doc);
    std::optional<std::string> holder;
    if (stored) holder = p.open(*stored).processor;
    for (int t = 0; t < 2; ++t) {
      const Answer& a = answers[t][i];
      if (!a.record) continue;
      ++checked;
      auto r = p.open(*a.record);
      ASSERT_TRUE(holder) << doc << " was answered but is not stored";
      EXPECT_EQ(r.processor, *holder) << doc;
      if (r.status == RecordStatus::claimed) {
        ++claimed_answers;
        EXPECT_EQ(*a.record, *stored) << doc;
      }
    }
    // Unanswered claims are resent: a committed one gets its stored record back,
    // an uncommitted one is claimed now. Either way exactly one holder.
    for (int t = 0; t < 2; ++t) {
      if (answers[t][i].record) continue;
      auto r = client.claim(answers[t][i].claim);
      ASSERT_TRUE(r) << r.error().message();
      auto view = p.open(*r);
      if (holder) {
        EXPECT_EQ(view.processor, *holder) << doc;
      } else {
        EXPECT_EQ(view.status, RecordStatus::claimed) << doc;
        holder = view.processor;
      }
    }
  }
  EXPECT_GT(checked, 0) << "no claim was answered before the kills";
  EXPECT_GT(claimed_answers, 0);
  RecordProperty("answers_checked", checked);
}

}  // namespace
}  // namespace zf::test
