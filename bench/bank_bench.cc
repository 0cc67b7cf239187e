// The custody server's logic in-process (src/bank/bank.h) on its SQLite store
// in a temporary directory: WAL, synchronous=FULL, as `zf bank serve` runs it
// (DESIGN.md §8). No HTTP. Wall time is reported: each commit waits for fsync,
// which bounds a bank's rate whenever the disk is slower than the CPU work.
#include <benchmark/benchmark.h>

#include "bench_world.h"
#include "store/sqlite.h"

namespace zf::bench {
namespace {

// A receipt that is a signed refusal would mean we measured the wrong path.
bool refused(benchmark::State& state, const std::string& receipt) {
  if (!jws_payload(receipt).contains("status")) return false;
  state.SkipWithError(("the bank refused: " + receipt).c_str());
  return true;
}

// Verify the request (signature, chain, role, CRL, time), check the account,
// sign the receipt, then ONE transaction: insert-if-absent the document id,
// apply the journal entry, store the receipt; commit (fsync).
template <class World>
void Topup(benchmark::State& state) {
  BankWorld& w = shared_world<World>();
  std::vector<std::string> requests;
  std::size_t next = 0;
  std::string receipt;
  for (auto _ : state) {
    if (next == requests.size()) {
      // Each request is a fresh document the SE signed; signing is not the bank's cost.
      state.PauseTiming();
      requests.clear();
      next = 0;
      for (int i = 0; i < 64; ++i) requests.push_back(w.topup_request(1));
      state.ResumeTiming();
    }
    auto r = w.bank->topup(requests[next++]);
    if (failed(state, r)) break;
    receipt = std::move(*r);
  }
  if (!receipt.empty()) refused(state, receipt);
  state.SetItemsProcessed(state.iterations());
}

// The terminal resends a request after a lost answer: verify again, find the
// processed document, return the stored receipt bytes; nothing is written.
void TopupReplay(benchmark::State& state) {
  BankWorld& w = shared_world<BankWorld>();
  std::string request = w.topup_request(1);
  std::string first = must(w.bank->topup(request), "first top-up");
  if (refused(state, first)) return;
  for (auto _ : state) {
    auto r = w.bank->topup(request);
    if (failed(state, r)) break;
    if (*r != first) {
      state.SkipWithError("a replay returned another receipt");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

// Verify the note, sign the receipt, one transaction crediting the account
// from e-cash outstanding exactly once; commit (fsync).
void Deposit(benchmark::State& state) {
  BankWorld& w = shared_world<BankWorld>();
  std::vector<std::string> notes;
  std::size_t next = 0;
  std::string receipt;
  for (auto _ : state) {
    if (next == notes.size()) {
      state.PauseTiming();
      notes.clear();
      next = 0;
      for (int i = 0; i < 64; ++i) notes.push_back(w.deposit_note(1));
      state.ResumeTiming();
    }
    auto r = w.bank->deposit(notes[next++]);
    if (failed(state, r)) break;
    receipt = std::move(*r);
  }
  if (!receipt.empty()) refused(state, receipt);
  state.SetItemsProcessed(state.iterations());
}

// The floor under every bank write: one transaction inserting a receipt-sized
// row, committed with the bank's settings (WAL, synchronous=FULL).
struct CommitWorld {
  TempDir tmp;
  std::unique_ptr<store::Db> db = must(store::Db::open((tmp.path() / "commit.db").string()), "db");
};

void SqliteCommit(benchmark::State& state) {
  CommitWorld& w = shared_world<CommitWorld>();
  must(w.db->exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)"),
       "create");
  Bytes row = random_bytes(1024);
  for (auto _ : state) {
    auto s = w.db->transaction([&]() -> Status {
      auto insert = w.db->prepare("INSERT INTO t (v) VALUES (?1)");
      if (!insert) return std::unexpected(insert.error());
      return insert->bind(1, row).run();
    });
    if (failed(state, s)) break;
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(SqliteCommit)->Name("bank/SqliteCommit")->UseRealTime();
BENCHMARK(Topup<BankWorld>)->Name("bank/Topup")->UseRealTime();
// The same with the registry claim first (DESIGN.md §7): the registry verifies
// the bank's claim, signs its record and commits it (its own fsync), and the
// bank verifies the record, before the bank's own transaction.
BENCHMARK(Topup<BankRegistryWorld>)->Name("bank/TopupWithRegistryClaim")->UseRealTime();
BENCHMARK(TopupReplay)->Name("bank/TopupReplay")->UseRealTime();
BENCHMARK(Deposit)->Name("bank/Deposit")->UseRealTime();

}  // namespace
}  // namespace zf::bench
