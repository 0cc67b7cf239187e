// One suite for every RegistryStore backend (STYLE.md §3): the one store over
// store::Database, on a SQLite file and on a PostgreSQL server (a fresh schema
// per test, tests/test_database.h).
#include "registry/store.h"

#include <barrier>
#include <thread>

#include "../test_database.h"
#include "ca_fixture.h"
#include "core/crypto.h"

namespace zf::test {
namespace {

using registry::ClaimOutcome;
using registry::RecordRow;
using registry::RegistryStore;

struct Backend {
  const char* name;
  bool postgres;
};

const Backend kBackends[] = {{"sqlite", false}, {"postgresql", true}};

// Names the backend in test output instead of dumping its bytes.
void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

RecordRow row(const std::string& doc_id, const std::string& processor,
              const std::string& result = "ok", std::optional<std::int64_t> seq = std::nullopt,
              const std::string& issuer = "se-1") {
  return RecordRow{doc_id,
                   issuer,
                   seq,
                   "payment.note",
                   processor,
                   sha256(as_bytes(result)),
                   "claim-of-" + processor,
                   "record-" + doc_id + "-" + processor,
                   1000};
}

class RegistryStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam().postgres) {
      ASSERT_NO_FATAL_FAILURE(schema.create("registry"));
    }
    url = GetParam().postgres ? schema.url() : (tmp.path() / "registry.db").string();
    auto s = registry::open_store(url);
    ASSERT_TRUE(s) << s.error().message();
    store = std::move(*s);
  }

  registry::RegistryStats stats() {
    auto s = store->stats();
    EXPECT_TRUE(s) << s.error().message();
    return s ? *s : registry::RegistryStats{-1, -1};
  }

  TempDir tmp;
  PostgresSchema schema;
  std::string url;  // opening it again gives more connections to the same data
  std::unique_ptr<RegistryStore> store;
};

TEST_P(RegistryStoreTest, FirstClaimWinsAndIsStoredWhole) {
  RecordRow a = row("se-1:1", "bank-a", "ok", 1);
  auto r = store->claim(a, 5);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->outcome, ClaimOutcome::claimed);
  EXPECT_FALSE(r->alert);
  auto found = store->find("se-1:1");
  ASSERT_TRUE(found && *found);
  const RecordRow& f = **found;
  EXPECT_EQ(f.doc_id, a.doc_id);
  EXPECT_EQ(f.doc_issuer, a.doc_issuer);
  EXPECT_EQ(f.doc_seq, a.doc_seq);
  EXPECT_EQ(f.doc_type, a.doc_type);
  EXPECT_EQ(f.processor, a.processor);
  EXPECT_EQ(f.result_digest, a.result_digest);
  EXPECT_EQ(f.claim_jws, a.claim_jws);
  EXPECT_EQ(f.record_jws, a.record_jws);
  EXPECT_EQ(f.claimed_at, a.claimed_at);
  auto none = store->find("se-1:2");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  EXPECT_EQ(stats().records, 1);
}

TEST_P(RegistryStoreTest, LaterClaimsGetTheHolder) {
  ASSERT_TRUE(store->claim(row("d1", "bank-a", "ok", 1), 5));
  // The same processor with the same facts: a retry, the stored row unchanged.
  RecordRow again = row("d1", "bank-a", "ok", 1);
  again.record_jws = "a-new-record-that-must-not-be-stored";
  auto retry = store->claim(again, 6);
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->outcome, ClaimOutcome::retry);
  EXPECT_EQ(retry->record.record_jws, "record-d1-bank-a");
  // Another processor, or the same one with other document facts: already
  // processed. (The same SE seq with another digest is a reused seq: see below.)
  for (const RecordRow& other :
       {row("d1", "bank-b", "ok", 1), row("d1", "bank-a", "ok", 2),
        row("d1", "bank-a", "ok", std::nullopt), row("d1", "bank-a", "ok", 1, "se-2")}) {
    auto r = store->claim(other, 7);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->outcome, ClaimOutcome::already_processed);
    EXPECT_EQ(r->record.processor, "bank-a");
    EXPECT_EQ(r->record.result_digest, sha256(as_bytes("ok")));
    EXPECT_EQ(r->record.record_jws, "record-d1-bank-a");
  }
  // A document no SE signed (no seq) with another result: already processed, no alert.
  ASSERT_TRUE(store->claim(row("d2", "bank-a", "ok", std::nullopt), 8));
  auto other_result = store->claim(row("d2", "bank-a", "other", std::nullopt), 8);
  ASSERT_TRUE(other_result);
  EXPECT_EQ(other_result->outcome, ClaimOutcome::already_processed);
  EXPECT_EQ(stats().records, 2);
  EXPECT_EQ(stats().alerts, 0);
}

// An SE's document id is "<se>:<seq>": another document under a held id is the
// same seq spent twice (a restored or cloned SE), whoever claims it.
TEST_P(RegistryStoreTest, AnotherDocumentUnderAHeldSeDocumentIdIsASeqReuse) {
  ASSERT_TRUE(store->claim(row("se-1:7", "bank-a", "ok", 7), 5));
  for (const char* processor : {"bank-a", "bank-b"}) {
    RecordRow second = row("se-1:7", processor, "another-note", 7);
    auto r = store->claim(second, 9);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->outcome, ClaimOutcome::seq_reused) << processor;
    EXPECT_EQ(r->record.processor, "bank-a");
    EXPECT_EQ(r->record.result_digest, sha256(as_bytes("ok")));
    ASSERT_TRUE(r->alert);
    EXPECT_EQ(r->alert->se_id, "se-1");
    EXPECT_EQ(r->alert->seq, 7);
    EXPECT_EQ(r->alert->first_doc_id, "se-1:7");
    EXPECT_EQ(r->alert->first_processor, "bank-a");
    EXPECT_EQ(r->alert->second_doc_id, "se-1:7");
    EXPECT_EQ(r->alert->second_processor, processor);
    EXPECT_EQ(r->alert->second_claim_jws, second.claim_jws);
    // Asked again, the same alert, not a second one.
    auto again = store->claim(second, 10);
    ASSERT_TRUE(again && again->alert);
    EXPECT_EQ(again->alert->id, r->alert->id);
  }
  // The first document keeps its record untouched.
  auto found = store->find("se-1:7");
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->processor, "bank-a");
  EXPECT_EQ((*found)->record_jws, "record-se-1:7-bank-a");
  EXPECT_EQ(stats().records, 1);
  EXPECT_EQ(stats().alerts, 2);
}

TEST_P(RegistryStoreTest, AReusedSeqIsRefusedAndRaisesOneAlertPerDocumentAndProcessor) {
  ASSERT_TRUE(store->claim(row("se-1:first", "bank-a", "ok", 7), 5));
  RecordRow clone = row("se-1:clone", "bank-b", "ok", 7);
  auto r = store->claim(clone, 9);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->outcome, ClaimOutcome::seq_reused);
  EXPECT_EQ(r->record.doc_id, "se-1:first");
  ASSERT_TRUE(r->alert);
  EXPECT_EQ(r->alert->se_id, "se-1");
  EXPECT_EQ(r->alert->seq, 7);
  EXPECT_EQ(r->alert->first_doc_id, "se-1:first");
  EXPECT_EQ(r->alert->first_processor, "bank-a");
  EXPECT_EQ(r->alert->second_doc_id, "se-1:clone");
  EXPECT_EQ(r->alert->second_processor, "bank-b");
  EXPECT_EQ(r->alert->second_claim_jws, clone.claim_jws);
  EXPECT_EQ(r->alert->created_at, 9);
  // The clone is not recorded: the id stays unclaimed and the pair stays with the first.
  auto found = store->find("se-1:clone");
  ASSERT_TRUE(found);
  EXPECT_FALSE(*found);
  // A retry does not multiply the alert; another processor seeing the clone adds one.
  auto again = store->claim(clone, 10);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->outcome, ClaimOutcome::seq_reused);
  EXPECT_EQ(again->alert->id, r->alert->id);
  ASSERT_TRUE(store->claim(row("se-1:clone", "bank-c", "ok", 7), 11));
  EXPECT_EQ(stats().alerts, 2);
  EXPECT_EQ(stats().records, 1);
  // Another issuer may use the same seq; rows without a seq never collide.
  auto other_se = store->claim(row("se-2:x", "bank-a", "ok", 7, "se-2"), 12);
  ASSERT_TRUE(other_se);
  EXPECT_EQ(other_se->outcome, ClaimOutcome::claimed);
  for (int i = 0; i < 3; ++i) {
    auto r2 = store->claim(row("bank-doc-" + std::to_string(i), "bank-a", "ok", std::nullopt), 13);
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->outcome, ClaimOutcome::claimed);
  }
  auto alerts = store->alerts(0, 10);
  ASSERT_TRUE(alerts);
  ASSERT_EQ(alerts->size(), 2u);
  EXPECT_EQ((*alerts)[1].second_processor, "bank-c");
  auto after = store->alerts((*alerts)[0].id, 10);
  ASSERT_TRUE(after);
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after->front().id, (*alerts)[1].id);
  EXPECT_EQ(stats().records, 5);
}

// Two connections to one database (as two registry processes would have):
// threads race on every document id; each id is won exactly once.
TEST_P(RegistryStoreTest, RacingConnectionsClaimEachIdOnce) {
  constexpr int kThreads = 4, kRounds = 60;
  std::vector<std::unique_ptr<RegistryStore>> conns;
  for (int i = 0; i < 2; ++i) {
    auto s = registry::open_store(url);
    ASSERT_TRUE(s);
    conns.push_back(std::move(*s));
  }
  std::vector<std::vector<ClaimOutcome>> outcomes(kRounds, std::vector<ClaimOutcome>(kThreads));
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      RegistryStore& s = *conns[t % 2];
      for (int round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();
        // Every thread is another processor acting on the same document.
        auto r = s.claim(row("doc-" + std::to_string(round), "p" + std::to_string(t), "ok", round), 1);
        ASSERT_TRUE(r) << r.error().message();
        outcomes[round][t] = r->outcome;
      }
    });
  for (auto& th : threads) th.join();
  for (int round = 0; round < kRounds; ++round) {
    int won = 0;
    for (auto o : outcomes[round]) {
      won += o == ClaimOutcome::claimed;
      EXPECT_TRUE(o == ClaimOutcome::claimed || o == ClaimOutcome::already_processed);
    }
    EXPECT_EQ(won, 1) << "round " << round;
  }
  EXPECT_EQ(stats().records, kRounds);
  EXPECT_EQ(stats().alerts, 0);
}

TEST_P(RegistryStoreTest, AdminTokensAndReopening) {
  Bytes h = sha256(as_bytes("token"));
  ASSERT_TRUE(store->add_admin_token(h, "admin"));
  EXPECT_TRUE(*store->is_admin_token(h));
  EXPECT_FALSE(*store->is_admin_token(sha256(as_bytes("other"))));
  ASSERT_TRUE(store->claim(row("kept", "bank-a"), 1));
  store.reset();
  auto again = registry::open_store(url);
  ASSERT_TRUE(again);
  auto found = (*again)->find("kept");
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->processor, "bank-a");
  EXPECT_TRUE(*(*again)->is_admin_token(h));
}

INSTANTIATE_TEST_SUITE_P(Backends, RegistryStoreTest, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace zf::test
