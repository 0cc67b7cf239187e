// One suite for every BankStore backend (STYLE.md §3): the one store over
// store::Database, on a SQLite file and on a PostgreSQL server (a fresh schema
// per test, tests/test_database.h).
#include "bank/store.h"

#include <atomic>
#include <barrier>
#include <thread>

#include "../test_database.h"
#include "ca_fixture.h"

namespace zf::test {
namespace {

using bank::AccountRecord;
using bank::BankStore;
using bank::DocKey;
using ledger::AccountKind;

struct Backend {
  const char* name;
  bool postgres;
};

const Backend kBackends[] = {{"sqlite", false}, {"postgresql", true}};

// Names the backend in test output instead of dumping its bytes.
void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

class BankStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam().postgres) {
      ASSERT_NO_FATAL_FAILURE(schema.create("bank"));
    }
    url = GetParam().postgres ? schema.url() : (tmp.path() / "bank.db").string();
    auto s = bank::open_store(url);
    ASSERT_TRUE(s) << s.error().message();
    store = std::move(*s);
    ASSERT_TRUE(store->open_account(
        AccountRecord{"alice", AccountKind::customer, "CNY", "alice", {}, 0, 1, {}, 0}));
    ASSERT_TRUE(
        store->apply(key("cash-1"), *ledger::cash_in("cash-1", "alice", cny(1000)), "r-cash-1", 1));
  }

  void TearDown() override {
    // Conservation holds after every test, except where a test broke it on purpose.
    if (store && !corrupted) {
      EXPECT_TRUE(audit_ok());
    }
  }

  static Amount cny(std::int64_t minor) { return *Amount::of("CNY", minor); }
  static DocKey key(const std::string& id, const std::string& payload = "p",
                    const std::string& signer = "se-1") {
    return DocKey{id, signer, "topup.request", sha256(as_bytes(payload))};
  }
  std::int64_t balance(const std::string& id) {
    auto a = store->find_account(id);
    return a && *a ? (*a)->balance_minor : -1;
  }
  bool audit_ok() {
    auto r = store->audit();
    EXPECT_TRUE(r) << r.error().message();
    return r && r->ok();
  }

  // Overwrites an account's balance behind the store's back (to prove the audit notices).
  void corrupt(const std::string& account, std::int64_t balance) {
    auto db = store::Database::open(url);
    ASSERT_TRUE(db) << db.error().message();
    ASSERT_TRUE((*db)->transaction(store::Database::Mode::write, [&](store::Conn& c) -> Status {
      auto r = c.query("UPDATE accounts SET balance_minor = ?1 WHERE id = ?2", {balance, account});
      if (!r) return std::unexpected(r.error());
      return {};
    }));
  }

  TempDir tmp;
  PostgresSchema schema;
  std::string url;
  std::unique_ptr<BankStore> store;
  bool corrupted = false;
};

TEST_P(BankStoreTest, OpeningAnAccountCreatesTheCurrencySystemAccounts) {
  auto all = store->list_accounts();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ(balance(ledger::issuance_account_id("CNY")), -1000);
  EXPECT_EQ(balance(ledger::outstanding_account_id("CNY")), 0);
  auto sys = store->find_account(ledger::outstanding_account_id("CNY"));
  EXPECT_EQ((*sys)->kind, AccountKind::ecash_outstanding);
}

TEST_P(BankStoreTest, ApplyMovesMoneyAndRecordsTheResponse) {
  auto a = store->apply(key("t-1"), *ledger::topup("t-1", "alice", cny(300)), "receipt-1", 2);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_FALSE(a->replayed);
  EXPECT_GT(a->entry_id, 0);
  EXPECT_EQ(a->response, "receipt-1");
  EXPECT_EQ(balance("alice"), 700);
  auto p = store->find_processed("t-1");
  ASSERT_TRUE(p && *p);
  EXPECT_EQ((*p)->response, "receipt-1");
  EXPECT_EQ((*p)->key.signer, "se-1");
  auto h = store->history("alice", 10);
  ASSERT_TRUE(h);
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].amount_minor, -300);
  EXPECT_TRUE(audit_ok());
}

TEST_P(BankStoreTest, SameDocumentReturnsTheStoredResponseAndMovesNothing) {
  ASSERT_TRUE(store->apply(key("t-1"), *ledger::topup("t-1", "alice", cny(300)), "receipt-1", 2));
  // The retry brings a freshly built response; the stored one wins.
  auto again =
      store->apply(key("t-1"), *ledger::topup("t-1", "alice", cny(300)), "receipt-1-rebuilt", 3);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->response, "receipt-1");
  EXPECT_EQ(balance("alice"), 700);
  EXPECT_TRUE(audit_ok());
}

TEST_P(BankStoreTest, ADifferentDocumentWithAUsedIdChangesNothing) {
  ASSERT_TRUE(store->apply(key("t-1"), *ledger::topup("t-1", "alice", cny(300)), "receipt-1", 2));
  for (const DocKey& k : {key("t-1", "other payload"), key("t-1", "p", "se-2")}) {
    auto r = store->apply(k, *ledger::topup("t-1", "alice", cny(50)), "receipt-x", 3);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::doc_id_reused);
  }
  EXPECT_EQ(balance("alice"), 700);
  EXPECT_EQ((*store->find_processed("t-1"))->response, "receipt-1");
}

TEST_P(BankStoreTest, ARefusedMovementLeavesNoTrace) {
  auto r =
      store->apply(key("t-big"), *ledger::topup("t-big", "alice", cny(1001)), "receipt-big", 2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::insufficient_funds);
  EXPECT_EQ(balance("alice"), 1000);
  // The id was not claimed: the same document can succeed once funds arrive.
  auto p = store->find_processed("t-big");
  ASSERT_TRUE(p);
  EXPECT_FALSE(*p);
  ASSERT_TRUE(store->apply(key("cash-2"), *ledger::cash_in("cash-2", "alice", cny(1)), "r", 3));
  EXPECT_TRUE(
      store->apply(key("t-big"), *ledger::topup("t-big", "alice", cny(1001)), "receipt-big", 4));
  EXPECT_EQ(balance("alice"), 0);
  EXPECT_TRUE(audit_ok());
}

TEST_P(BankStoreTest, AnUnbalancedEntryIsNeverWritten) {
  ledger::JournalEntry bad = *ledger::topup("t-bad", "alice", cny(300));
  bad.postings[1].amount_minor = 299;  // a fen goes missing
  auto r = store->apply(key("t-bad"), bad, "receipt", 2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::internal);
  EXPECT_EQ(balance("alice"), 1000);
  EXPECT_FALSE(*store->find_processed("t-bad"));
  auto audit = store->audit();
  ASSERT_TRUE(audit);
  EXPECT_TRUE(audit->ok());
  EXPECT_EQ(audit->entries, 1u);
}

TEST_P(BankStoreTest, PostingToAnUnknownAccountIsRefused) {
  auto r = store->apply(key("t-x"), *ledger::topup("t-x", "ghost", cny(1)), "receipt", 2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::account_unknown);
}

TEST_P(BankStoreTest, AuditCatchesABalanceChangedBehindTheLedger) {
  ASSERT_TRUE(audit_ok());
  store.reset();
  corrupted = true;
  ASSERT_NO_FATAL_FAILURE(corrupt("alice", 1001));
  auto s = bank::open_store(url);
  ASSERT_TRUE(s);
  store = std::move(*s);
  auto r = store->audit();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->ok());
  ASSERT_EQ(r->currencies.size(), 1u);
  EXPECT_FALSE(r->currencies[0].conserved);
  EXPECT_EQ(r->currencies[0].customer_minor, 1001);
  EXPECT_EQ(r->currencies[0].issued_minor, 1000);
}

TEST_P(BankStoreTest, AdminTokensAreLookedUpByHash) {
  Bytes h = sha256(as_bytes("secret"));
  ASSERT_TRUE(store->add_admin_token(h, "admin"));
  EXPECT_TRUE(*store->is_admin_token(h));
  EXPECT_FALSE(*store->is_admin_token(sha256(as_bytes("guess"))));
}

TEST_P(BankStoreTest, AQueryIdIsUsedOnceUntilItIsForgottenAfterExpiry) {
  auto first = store->use_once("se-1", "se-1:q:a", 400, 100);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_TRUE(*first);
  EXPECT_FALSE(*store->use_once("se-1", "se-1:q:a", 400, 101));
  // Another signer's id is its own (ids are never trusted to be bound to a signer here).
  EXPECT_TRUE(*store->use_once("se-2", "se-1:q:a", 400, 102));
  // Kept through the retention margin after exp, so a clock stepped back cannot revive it.
  EXPECT_FALSE(*store->use_once("se-1", "se-1:q:a", 400, 400 + bank::kUseRetentionS));
  // Forgotten afterwards (the document is long expired and refused before this point).
  EXPECT_TRUE(*store->use_once("se-1", "se-1:q:a", 2000, 401 + bank::kUseRetentionS));
  EXPECT_EQ(balance("alice"), 1000);
}

// Two stores on one database (as two bank processes would be), eight threads:
// transfers back and forth between two accounts and top-ups from both, every
// document sent by two threads at once. No update is lost (the balances are
// exactly what the documents add up to) and no document moves money twice.
TEST_P(BankStoreTest, ConcurrentDocumentsOnTheSameAccountsLoseNoUpdateAndMoveOnce) {
  ASSERT_TRUE(store->open_account(AccountRecord{"bob", AccountKind::customer, "CNY", "bob", {}, 0, 1, {}, 0}));
  ASSERT_TRUE(store->apply(key("cash-2"), *ledger::cash_in("cash-2", "bob", cny(1000)), "r-cash-2", 1));
  std::vector<std::unique_ptr<BankStore>> stores;
  for (int i = 0; i < 2; ++i) {
    auto s = bank::open_store(url);
    ASSERT_TRUE(s) << s.error().message();
    stores.push_back(std::move(*s));
  }
  constexpr int kThreads = 8, kDocs = 40;
  // Document d: even d moves 3 from alice to bob, odd d moves 2 back, every
  // fifth is also a top-up of 1 from alice's account.
  auto entry_of = [](int d) {
    std::string id = "d-" + std::to_string(d);
    if (d % 5 == 0) return *ledger::topup(id, "alice", cny(1));
    return d % 2 == 0 ? *ledger::transfer(id, "alice", "bob", cny(3)) : *ledger::transfer(id, "bob", "alice", cny(2));
  };
  std::atomic<int> moved{0}, replayed{0}, failed{0};
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      BankStore& s = *stores[t % 2];
      sync.arrive_and_wait();
      // Threads t and t+4 send the same documents, in opposite orders.
      for (int i = 0; i < kDocs; ++i) {
        int d = (t < 4 ? i : kDocs - 1 - i) * 4 + t % 4;
        std::string id = "d-" + std::to_string(d);
        auto r = s.apply(key(id, "payload-" + id), entry_of(d), "r-" + id, 2);
        if (!r) {
          ++failed;
          ADD_FAILURE() << id << ": " << r.error().message();
        } else {
          ++(r->replayed ? replayed : moved);
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(moved.load(), kDocs * 4);
  EXPECT_EQ(replayed.load(), kDocs * 4);
  std::int64_t alice = 1000, bob = 1000;
  for (int d = 0; d < kDocs * 4; ++d) {
    if (d % 5 == 0) alice -= 1;
    else if (d % 2 == 0) alice -= 3, bob += 3;
    else alice += 2, bob -= 2;
  }
  EXPECT_EQ(balance("alice"), alice);
  EXPECT_EQ(balance("bob"), bob);
  auto h = store->history("alice", 1000);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->size(), std::size_t{1 + kDocs * 4});  // the cash-in and one posting per document
}

INSTANTIATE_TEST_SUITE_P(Backends, BankStoreTest, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace zf::test
