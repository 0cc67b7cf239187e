// Model-based random test (STYLE.md item 13; DESIGN.md §3, §6.2–6.4, §7): a
// seeded, replayable run of random operations against a network of real
// processes (CA, bank, registry, the SEs of alice, bob and carol), with kill -9 and
// restart of services between operations and in the middle of them, checked
// after every step against a small in-test model and the books.
//
// Reproduce a failure (the test prints the seed, the step and the operation log):
//   ZF_MODEL_SEED=<seed> ZF_MODEL_STEPS=<step + 1>
//       build/tests/system/system_tests --gtest_filter='Model*'
// Long runs: ZF_MODEL_SEED=$RANDOM ZF_MODEL_STEPS=2000 (same command).
// Without ZF_MODEL_SEED the default seeds below run, one test each, and one
// random seed (ZF_CRASH_SEED sets it, as for the other crash tests).
// ZF_MODEL_VERBOSE=1 prints every step as it runs.
//
// Determinism: each step draws from its own generator, seeded with (seed, step),
// so the same seed plans the same operations, the same victims and the same
// kill delays. What a kill inside an operation interrupts depends on timing:
// the model then accepts either of the outcomes that keep the money (below),
// and later steps, which plan against the model, may differ from a previous run
// of the same seed. A run whose concurrent kills all land the same way (or a
// prefix before the first of them) replays exactly.
//
// Each step:
//   1. plans one operation from the model and the step's generator and
//      predicts its result: success or a named refusal (insufficient_funds,
//      not_owner, account_unknown, insufficient_ecash, limit_exceeded,
//      misaddressed, replayed, receipt_mismatch);
//   2. runs it; some steps kill -9 a victim service from a thread after a
//      seeded delay (and some of those a second victim while the terminals
//      retry); crash steps kill and restart a service between operations; racing
//      steps send one signed top-up request to the bank twice at once;
//   3. after any kill: restarts the victim, runs `retry` on every terminal until
//      nothing is pending, and settles an interrupted operation in the model from
//      what is recoverable: the top-up/deposit/payment document the SE signed (in
//      the outbox, adopted from the SE by retry if need be) with the bank's receipt,
//      or the payee SE's received set. Only "applied once on both sides" or "not at
//      all" is accepted, and the exact comparison of step 4 then holds both sides to
//      it;
//   4. checks: the audit (conservation, §3) is ok; e-cash outstanding = Σ model SE
//      balances + undelivered notes, and notes in flight = the model's undelivered
//      notes; every SE balance, applied/settled/received set and sent/received total
//      equals the model, with nothing pending; every bank account equals the model;
//      the bank journal holds each document id at most once and exactly the
//      documents the model says moved money; every acknowledged top-up/deposit
//      (credited or refused) is in processed_documents with the very receipt the
//      wallet got; every outbox holds exactly the model's documents, all settled;
//      when the network has a registry: every received note has a record there
//      won by its payee's SE, no record names another SE or an unknown document,
//      and there are no (SE, seq) reuse alerts.
//
// Victims are the network's services (net_->services): "ca", the bank, the
// registry, "se-<user>". A service this file does not know (a second bank, say)
// joins the victims by itself and is treated as involved in every operation.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "bank/client.h"
#include "core/document.h"
#include "store/sqlite.h"
#include "../crash_seed.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

// CI: three fixed seeds and one random one (ZF_CRASH_SEED fixes it), each on a
// fresh network. The fixed ones guard against regressions; the random one
// explores, and a failure prints the seed that replays it.
constexpr std::uint64_t kDefaultSeeds[] = {1, 20240917, 0x5eed};
constexpr int kRandomSeedParam = 3;
constexpr int kDefaultSteps = 80;

const std::vector<std::string> kUsers = {"alice", "bob", "carol"};
const std::string kUnknownAccount = "nobody-main";
const std::string kRegistry = "registry";  // the service name network_up gives it

std::optional<std::uint64_t> env_seed() {
  const char* env = std::getenv("ZF_MODEL_SEED");
  if (!env || !*env) return std::nullopt;
  return std::strtoull(env, nullptr, 0);
}

int env_steps() {
  const char* env = std::getenv("ZF_MODEL_STEPS");
  return env && *env ? std::atoi(env) : kDefaultSteps;
}

// Each step has its own generator, so a step's plan does not depend on how many
// numbers earlier steps drew. Only rng() itself is used (the std distributions
// differ between standard libraries).
std::mt19937_64 step_rng(std::uint64_t seed, int step) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(step)};
  return std::mt19937_64(seq);
}

std::uint64_t below(std::mt19937_64& rng, std::uint64_t n) { return n ? rng() % n : 0; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string cny(std::int64_t minor) {
  auto a = Amount::of("CNY", minor);
  return a ? a->to_string() : std::to_string(minor);
}

std::string code_name(Errc c) { return std::string(errc_name(c)); }

// A dropped link or a dead service; the wallet keeps such documents pending.
bool interruption(Errc c) {
  return c == Errc::unavailable || c == Errc::io_error || c == Errc::internal;
}

// The payload of a JWS (signature not checked: the SE and the bank did that).
std::optional<Document> payload_of(const std::string& jws) {
  auto parsed = jws_parse(jws);
  if (!parsed) return std::nullopt;
  auto doc = Document::parse(to_string(parsed->payload));
  if (!doc) return std::nullopt;
  return std::move(*doc);
}

// ---- The model

// A top-up or deposit the bank answered: credited (money moved) or a signed refusal.
struct BankDoc {
  std::string user, kind, account;  // kind: "topup" | "deposit"
  std::int64_t amount = 0;
  bool credited = false;
  std::string doc, receipt;  // the SE's JWS and the bank's answer, exactly
  bool in_outbox = true;     // false: sent by the test itself (a racing submission)
};

struct Note {
  std::string id, jws, payer, payee;
  std::int64_t amount = 0;
  bool delivered = false;
};

struct Model {
  std::map<std::string, std::int64_t> se;       // user -> e-cash in the SE
  std::map<std::string, std::int64_t> account;  // account id -> balance
  std::map<std::string, BankDoc> docs;          // by document id
  std::vector<Note> notes;                      // every payment note, in signing order

  std::int64_t se_total() const {
    std::int64_t t = 0;
    for (const auto& [_, v] : se) t += v;
    return t;
  }
  std::int64_t in_flight() const {
    std::int64_t t = 0;
    for (const auto& n : notes)
      if (!n.delivered) t += n.amount;
    return t;
  }
  std::int64_t accounts_total() const {
    std::int64_t t = 0;
    for (const auto& [_, v] : account) t += v;
    return t;
  }
  Note* note(const std::string& id) {
    for (auto& n : notes)
      if (n.id == id) return &n;
    return nullptr;
  }
  void add_doc(const std::string& id, BankDoc d) {
    if (d.credited) {
      std::int64_t sign = d.kind == "topup" ? 1 : -1;
      se[d.user] += sign * d.amount;
      account[d.account] -= sign * d.amount;
    }
    docs[id] = std::move(d);
  }
  void add_note(Note n) {
    se[n.payer] -= n.amount;
    notes.push_back(std::move(n));
  }
  void deliver(Note& n) {
    n.delivered = true;
    se[n.payee] += n.amount;
  }
};

// ---- Operations

enum class Kind { topup, race_topup, pay, receive, deposit, retry, replay_receipt, resend, crash };

struct Op {
  Kind kind = Kind::retry;
  std::string user;     // whose terminal and SE act (pay: the payer)
  std::string target;   // pay: payee user; receive/replay: the SE the document is given to
  std::string account;  // topup/deposit
  std::int64_t amount = 0;
  std::string doc_id;      // receive: the note; replay/resend: the bank document
  Errc expect = Errc::ok;  // the model's prediction
  std::string victim;      // crash: killed between operations; else killed during the op
  int kill_delay_ms = -1;  // >= 0: a concurrent kill after this delay
  // A second kill while the terminals retry after the first one (the victim is
  // restarted once a retry fails or leaves work pending; the retries must get through).
  std::string recovery_victim;
  int recovery_kill_delay_ms = -1;
};
constexpr int kAfterTheOperation = 1 << 20;  // kill_delay_ms: kill once the operation returned

std::string describe(const Op& op) {
  std::string s;
  switch (op.kind) {
    case Kind::topup:
      s = "topup " + op.user + " " + cny(op.amount) + " from " + op.account;
      break;
    case Kind::race_topup:
      s = "topup " + op.user + " " + cny(op.amount) + " from " + op.account +
          ", the same request sent twice at once";
      break;
    case Kind::pay:
      s = "pay " + op.user + " -> " + op.target + " " + cny(op.amount);
      break;
    case Kind::receive:
      s = "receive " + op.doc_id + " at " + op.target;
      break;
    case Kind::deposit:
      s = "deposit " + op.user + " " + cny(op.amount) + " into " + op.account;
      break;
    case Kind::retry:
      s = "retry " + op.user;
      break;
    case Kind::replay_receipt:
      s = "replay receipt of " + op.doc_id + " to " + op.target;
      break;
    case Kind::resend:
      s = "resend " + op.doc_id + " to the bank";
      break;
    case Kind::crash:
      return "crash " + op.victim + " (kill -9, restart)";
  }
  s += " [expect " + code_name(op.expect) + "]";
  if (op.kill_delay_ms == kAfterTheOperation)
    s += " [kill -9 " + op.victim + " after the operation]";
  else if (op.kill_delay_ms >= 0)
    s += " [kill -9 " + op.victim + " after " + std::to_string(op.kill_delay_ms) + " ms]";
  if (!op.recovery_victim.empty())
    s += " [kill -9 " + op.recovery_victim + " during recovery after " +
         std::to_string(op.recovery_kill_delay_ms) + " ms]";
  return s;
}

class ModelTest : public NetworkTest, public ::testing::WithParamInterface<int> {
 protected:
  std::vector<std::string> users() const override { return kUsers; }

  void SetUp() override {
    auto seed = env_seed();
    if (seed && GetParam() != 0) GTEST_SKIP() << "ZF_MODEL_SEED runs one seed";
    if (seed)
      seed_ = *seed;
    else if (GetParam() == kRandomSeedParam)
      seed_ = crash_seed();  // ZF_CRASH_SEED, or a fresh one
    else
      seed_ = kDefaultSeeds[GetParam()];
    std::printf("model test seed %llu (reproduce: ZF_MODEL_SEED=%llu)\n",
                static_cast<unsigned long long>(seed_), static_cast<unsigned long long>(seed_));
    const char* midop = std::getenv("ZF_MODEL_MIDOP_KILLS");
    midop_kills_ = !midop || std::string(midop) != "0";
    NetworkTest::SetUp();
    cash_in_ = Amount::parse(opts_.cash_in)->minor();
    max_payment_ = opts_.max_payment_minor;
    // No SE can reach its maximum balance, so top-ups and receipts never meet
    // limit_exceeded and the model need not predict it.
    ASSERT_GE(opts_.max_balance_minor, cash_in_ * static_cast<std::int64_t>(kUsers.size()));
  }

  // ---- Planning: a pure function of the step's generator and the model.

  std::string other_user(std::mt19937_64& rng, const std::string& not_this) const {
    std::vector<std::string> others;
    for (const auto& u : kUsers)
      if (u != not_this) others.push_back(u);
    return others[below(rng, others.size())];
  }
  std::string account_of(const std::string& user) const { return user + "-main"; }

  bool has_service(const std::string& name) const {
    return std::find(victims_.begin(), victims_.end(), name) != victims_.end();
  }

  // Services whose death can interrupt `op`. The registry (when the network has
  // one) is on the path of every note a payee receives, and counts as on the
  // path of everything that reaches the bank too (banks may claim there). A
  // victim this file does not know counts as involved in everything.
  std::set<std::string> involved(const Op& op) const {
    std::set<std::string> out;
    bool off_the_registry = false;  // touches one SE and nothing else
    switch (op.kind) {
      case Kind::topup:
      case Kind::race_topup:
      case Kind::deposit:
      case Kind::retry:
        out = {"se-" + op.user, net_->bank_id};
        break;
      case Kind::pay:
        // The terminal asks the CA for the payee's certificate (and may renew
        // the SE's CRL there) before the SE signs: a CA that dies meanwhile
        // interrupts the payment, nothing debited.
        out = {"se-" + op.user, "ca"};
        off_the_registry = true;
        break;
      case Kind::receive:
        out = {"se-" + op.target};
        break;
      case Kind::replay_receipt:
        out = {"se-" + op.target};
        off_the_registry = true;
        break;
      case Kind::resend:
        out = {net_->bank_id};
        break;
      case Kind::crash:
        return {op.victim};
    }
    if (!off_the_registry && has_service(kRegistry)) out.insert(kRegistry);
    return out;
  }
  bool may_interrupt(const Op& op) const {
    if (op.victim.empty()) return false;
    if (involved(op).count(op.victim)) return true;
    bool known = op.victim == "ca" || op.victim == net_->bank_id || op.victim == kRegistry;
    for (const auto& u : kUsers) known = known || op.victim == "se-" + u;
    return !known;
  }

  Op plan(std::mt19937_64& rng) const {
    Op op;
    const std::uint64_t roll = below(rng, 100);
    op.user = kUsers[below(rng, kUsers.size())];
    if (roll < 20) {
      op.kind = Kind::topup;
      std::uint64_t which = below(rng, 100);
      op.account = which < 84   ? account_of(op.user)
                   : which < 93 ? account_of(other_user(rng, op.user))
                                : kUnknownAccount;
      auto known = model_.account.find(op.account);
      std::int64_t held = known == model_.account.end() ? 0 : known->second;
      bool over = below(rng, 100) < 15 || held == 0;
      op.amount =
          over ? held + 1 + static_cast<std::int64_t>(below(rng, 50000))
               : 1 + static_cast<std::int64_t>(below(rng, std::min<std::int64_t>(held, 30000)));
      op.expect = known == model_.account.end()       ? Errc::account_unknown
                  : op.account != account_of(op.user) ? Errc::not_owner
                  : op.amount > held                  ? Errc::insufficient_funds
                                                      : Errc::ok;
    } else if (roll < 24) {
      // Two copies of one signed request reach the bank at once (DESIGN.md §7):
      // one moves the money, both get the same receipt.
      op.kind = Kind::race_topup;
      op.account = account_of(op.user);
      std::int64_t held = model_.account.at(op.account);
      bool over = below(rng, 100) < 15 || held == 0;
      op.amount =
          over ? held + 1 + static_cast<std::int64_t>(below(rng, 50000))
               : 1 + static_cast<std::int64_t>(below(rng, std::min<std::int64_t>(held, 30000)));
      op.expect = op.amount > held ? Errc::insufficient_funds : Errc::ok;
    } else if (roll < 46) {
      op.kind = Kind::pay;
      op.target = below(rng, 100) < 4 ? op.user : other_user(rng, op.user);
      std::int64_t held = model_.se.at(op.user);
      std::uint64_t size = below(rng, 100);
      if (size < 4)
        op.amount = max_payment_ + 1 + static_cast<std::int64_t>(below(rng, 10000));
      else if (size < 16 || held == 0)
        op.amount = held + 1 + static_cast<std::int64_t>(below(rng, 20000));
      else
        op.amount = 1 + static_cast<std::int64_t>(below(rng, std::min<std::int64_t>(held, 40000)));
      op.expect = op.target == op.user       ? Errc::misaddressed
                  : op.amount > max_payment_ ? Errc::limit_exceeded
                  : op.amount > held         ? Errc::insufficient_ecash
                                             : Errc::ok;
    } else if (roll < 66) {
      op.kind = Kind::receive;
      std::vector<const Note*> pending, delivered;
      for (const auto& n : model_.notes) (n.delivered ? delivered : pending).push_back(&n);
      std::uint64_t how = below(rng, 100);
      if ((how < 15 || pending.empty()) && !delivered.empty()) {
        const Note* n = delivered[below(rng, delivered.size())];
        op.doc_id = n->id, op.target = n->payee, op.expect = Errc::replayed;
      } else if (how < 27 && !pending.empty()) {
        const Note* n = pending[below(rng, pending.size())];
        op.doc_id = n->id, op.target = other_user(rng, n->payee), op.expect = Errc::misaddressed;
      } else if (!pending.empty()) {
        const Note* n = pending[below(rng, pending.size())];
        op.doc_id = n->id, op.target = n->payee, op.expect = Errc::ok;
      } else {
        op.kind = Kind::retry;  // no note yet
      }
    } else if (roll < 80) {
      op.kind = Kind::deposit;
      std::uint64_t which = below(rng, 100);
      op.account = which < 80   ? account_of(op.user)
                   : which < 92 ? account_of(other_user(rng, op.user))
                                : kUnknownAccount;
      std::int64_t held = model_.se.at(op.user);
      bool over = below(rng, 100) < 12 || held == 0;
      op.amount =
          over ? held + 1 + static_cast<std::int64_t>(below(rng, 20000))
               : 1 + static_cast<std::int64_t>(below(rng, std::min<std::int64_t>(held, 40000)));
      op.expect = op.amount > held                    ? Errc::insufficient_ecash
                  : !model_.account.count(op.account) ? Errc::account_unknown
                                                      : Errc::ok;
    } else if (roll < 82) {
      op.kind = Kind::retry;
    } else if (roll < 92) {
      if (model_.docs.empty()) {
        op.kind = Kind::retry;
      } else {
        auto it = std::next(model_.docs.begin(), static_cast<long>(below(rng, model_.docs.size())));
        op.doc_id = it->first;
        if (roll < 88) {
          // The SE must refuse a receipt it already applied, and one for another SE.
          op.kind = Kind::replay_receipt;
          bool owner = below(rng, 100) < 75;
          op.target = owner ? it->second.user : other_user(rng, it->second.user);
          op.expect = owner ? Errc::replayed : Errc::receipt_mismatch;
        } else {
          // The bank answers the same document with the same receipt and moves nothing.
          op.kind = Kind::resend;
        }
      }
    } else {
      op.kind = Kind::crash;
      op.victim = victims_[below(rng, victims_.size())];
      return op;
    }
    // Some value operations get a kill -9 in the middle, mostly of a party they use.
    bool value_op = op.kind == Kind::topup || op.kind == Kind::pay || op.kind == Kind::receive ||
                    op.kind == Kind::deposit;
    if (value_op && below(rng, 100) < 25) {
      auto parties = involved(op);
      std::vector<std::string> pool(parties.begin(), parties.end());
      if (below(rng, 10) < 3) pool = victims_;
      op.victim = pool[below(rng, pool.size())];
      op.kill_delay_ms = static_cast<int>(below(rng, 40));
      // ZF_MODEL_MIDOP_KILLS=0: the same victim dies right after the operation
      // instead, which makes the whole run timing-independent.
      if (!midop_kills_) op.kill_delay_ms = kAfterTheOperation;
      if (below(rng, 100) < 25) {
        std::vector<std::string> second = {"se-" + op.user, net_->bank_id};
        if (below(rng, 10) < 3) second = victims_;
        op.recovery_victim = second[below(rng, second.size())];
        op.recovery_kill_delay_ms = static_cast<int>(below(rng, 60));
      }
    }
    return op;
  }

  // ---- Running

  Result<std::unique_ptr<wallet::Wallet>> open_terminal(const std::string& user) {
    auto w = wallet::Wallet::open(se(user).wallet);
    if (!w) return std::unexpected(w.error());
    if (auto s = (*w)->unlock(opts_.pin); !s) return std::unexpected(s.error());
    return std::move(*w);
  }

  std::vector<wallet::OutboxEntry> outbox(const std::string& user) {
    auto w = wallet::Wallet::open(se(user).wallet);
    return w ? (*w)->outbox() : std::vector<wallet::OutboxEntry>{};
  }

  Result<Json> execute(const Op& op) {
    auto amount = *Amount::of("CNY", std::max<std::int64_t>(op.amount, 1));
    switch (op.kind) {
      case Kind::topup:
      case Kind::deposit:
      case Kind::pay:
      case Kind::retry: {
        auto w = open_terminal(op.user);
        if (!w) return std::unexpected(w.error());
        if (op.kind == Kind::topup) return (*w)->topup(amount, net_->bank_id, op.account);
        if (op.kind == Kind::deposit) return (*w)->deposit(amount, net_->bank_id, op.account);
        if (op.kind == Kind::retry) return (*w)->retry();
        auto note = (*w)->pay(amount, se(op.target).se_id);
        if (!note) return std::unexpected(note.error());
        return Json{{"note", *note}};
      }
      case Kind::race_topup: {
        auto w = open_terminal(op.user);
        if (!w) return std::unexpected(w.error());
        auto req = (*w)->se().topup_request(Json{{"amount", op.amount},
                                                 {"currency", "CNY"},
                                                 {"bank", net_->bank_id},
                                                 {"account", op.account}});
        if (!req) return std::unexpected(req.error());
        race_ = Race{(*req)["id"], (*req)["request"], {}, {}};
        auto root = Certificate::from_pem(slurp(net_->root_file));
        if (!root) return std::unexpected(root.error());
        Result<std::string> first = fail(Errc::internal), second = fail(Errc::internal);
        auto submit = [&](Result<std::string>& out) {
          auto bank = bank::BankClient::connect(net_->bank_url, *root, net_->bank_id, {});
          out = bank ? bank->topup(race_.doc) : Result<std::string>(std::unexpected(bank.error()));
        };
        std::thread a([&] { submit(first); }), b([&] { submit(second); });
        a.join();
        b.join();
        if (!first) return std::unexpected(first.error());
        if (!second) return std::unexpected(second.error());
        race_.receipt = *first;
        race_.other_receipt = *second;
        auto applied = (*w)->se().apply_topup_receipt(*first);
        if (!applied) return std::unexpected(applied.error());
        if (applied->contains("refused"))
          return fail(errc_from_name((*applied)["reason"].get<std::string>()), "refused");
        return applied;
      }
      case Kind::receive: {
        auto w = open_terminal(op.target);
        if (!w) return std::unexpected(w.error());
        return (*w)->receive(model_.note(op.doc_id)->jws);
      }
      case Kind::replay_receipt: {
        auto w = open_terminal(op.target);
        if (!w) return std::unexpected(w.error());
        const BankDoc& d = model_.docs.at(op.doc_id);
        return d.kind == "topup" ? (*w)->se().apply_topup_receipt(d.receipt)
                                 : (*w)->se().apply_deposit_receipt(d.receipt);
      }
      case Kind::resend: {
        auto root = Certificate::from_pem(slurp(net_->root_file));
        if (!root) return std::unexpected(root.error());
        auto bank = bank::BankClient::connect(net_->bank_url, *root, net_->bank_id, {});
        if (!bank) return std::unexpected(bank.error());
        const BankDoc& d = model_.docs.at(op.doc_id);
        auto r = d.kind == "topup" ? bank->topup(d.doc) : bank->deposit(d.doc);
        if (!r) return std::unexpected(r.error());
        return Json{{"receipt", *r}};
      }
      case Kind::crash:
        break;
    }
    return fail(Errc::internal, "not an operation");
  }

  // Every terminal retries until nothing is pending. Returns a summary for the log.
  // `on_failure` runs after an attempt that failed or left documents pending (it
  // restarts a service killed meanwhile).
  std::string recover(std::vector<std::string>& problems, bool expect_nothing,
                      const std::function<void()>& on_failure = {}) {
    std::string summary;
    for (const auto& user : kUsers) {
      std::string last;
      for (int attempt = 0;; ++attempt) {
        if (attempt == 50) {
          problems.push_back("recovery: " + user +
                             " still has pending documents after 50 retries: " + last);
          break;
        }
        auto w = open_terminal(user);
        Result<Json> r = w ? (*w)->retry() : Result<Json>(std::unexpected(w.error()));
        if (!r) {
          last = r.error().message();
          if (on_failure) on_failure();
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        last = r->dump();
        if ((*r)["adopted"] != 0 || (*r)["settled"] != 0) {
          summary += " " + user + ":adopted=" + (*r)["adopted"].dump() +
                     ",settled=" + (*r)["settled"].dump();
          if (expect_nothing)
            problems.push_back("recovery after an idle crash found work for " + user + ": " +
                               r->dump());
        }
        if ((*r)["refused"] != 0)
          problems.push_back("recovery: the bank refused a document of " + user + ": " + r->dump());
        if ((*r)["pending"] == 0) break;
        if (on_failure) on_failure();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    return summary;
  }

  // Runs one step and brings the model up to date. Appends the outcome to `line`.
  std::vector<std::string> run_step(const Op& op, std::string& line) {
    std::vector<std::string> problems;
    std::map<std::string, std::set<std::string>> before;
    for (const auto& u : kUsers)
      for (const auto& e : outbox(u)) before[u].insert(e.doc_id);

    if (op.kind == Kind::crash) {
      net_->kill9(op.victim);
      if (auto s = net_->restart(op.victim); !s) {
        problems.push_back("restart " + op.victim + ": " + s.error().message());
        return problems;
      }
      ++kills_;
      line += " => restarted";
      line += recover(problems, true);
      return problems;
    }

    std::thread killer;
    if (op.kill_delay_ms == kAfterTheOperation) {
      // Planned as a concurrent kill, run after the operation: nothing to interrupt.
    } else if (op.kill_delay_ms >= 0) {
      killer = std::thread([this, &op] {
        std::this_thread::sleep_for(std::chrono::milliseconds(op.kill_delay_ms));
        net_->kill9(op.victim);
      });
    }
    race_ = Race{};
    Result<Json> r = execute(op);
    if (killer.joinable() || op.kill_delay_ms == kAfterTheOperation) {
      if (killer.joinable())
        killer.join();
      else
        net_->kill9(op.victim);
      ++kills_;
      if (auto s = net_->restart(op.victim); !s) {
        problems.push_back("restart " + op.victim + ": " + s.error().message());
        return problems;
      }
    }
    line += r ? " => ok" : " => " + r.error().message();

    // What the model makes of the answer.
    bool uncertain = false;
    if (r) {
      if (op.expect != Errc::ok)
        problems.push_back("predicted " + code_name(op.expect) + ", got success");
    } else if (r.error().code != op.expect) {
      if (interruption(r.error().code) && may_interrupt(op)) {
        uncertain = true;
        ++interrupted_;
      } else {
        problems.push_back("predicted " + code_name(op.expect) + ", got " + r.error().message());
      }
    }
    if (op.kill_delay_ms >= 0) {
      line += " | recovery:";
      // The second victim is killed from a thread but restarted from this one:
      // a child started from a thread gets SIGTERM when that thread ends
      // (PR_SET_PDEATHSIG follows the spawning thread, see net::Child::spawn).
      std::thread second;
      std::atomic<bool> killed{false};
      bool restarted_yet = false;
      Status restarted;
      auto restart_second = [&] {
        if (restarted_yet || op.recovery_victim.empty()) return;
        if (second.joinable())
          second.join();
        else
          net_->kill9(op.recovery_victim);  // ZF_MODEL_MIDOP_KILLS=0: after recovery
        restarted = net_->restart(op.recovery_victim);
        restarted_yet = true;
        ++kills_;
      };
      if (!op.recovery_victim.empty() && midop_kills_) {
        second = std::thread([this, &op, &killed] {
          std::this_thread::sleep_for(std::chrono::milliseconds(op.recovery_kill_delay_ms));
          net_->kill9(op.recovery_victim);
          killed = true;
        });
      }
      line += recover(problems, op.kill_delay_ms == kAfterTheOperation, [&] {
        if (killed) restart_second();
      });
      if (!op.recovery_victim.empty()) {
        restart_second();
        if (!restarted) {
          problems.push_back("restart " + op.recovery_victim + ": " + restarted.error().message());
          return problems;
        }
        // Every terminal got to "nothing pending" above; a later kill changes nothing.
        line += " | after the second kill:";
        line += recover(problems, true);
      }
    }

    // New outbox entries: only the acting SE signs, at most one document.
    std::vector<wallet::OutboxEntry> fresh;
    for (const auto& u : kUsers) {
      for (auto& e : outbox(u)) {
        if (before[u].count(e.doc_id)) continue;
        bool signer = u == op.user &&
                      (op.kind == Kind::topup || op.kind == Kind::deposit || op.kind == Kind::pay);
        if (!signer)
          problems.push_back("unexpected new outbox entry " + e.doc_id + " of " + u);
        else
          fresh.push_back(std::move(e));
      }
    }
    if (fresh.size() > 1) problems.push_back("more than one new document for one operation");

    switch (op.kind) {
      case Kind::topup:
      case Kind::deposit: {
        // The SE signs unless it refuses first (a deposit over its balance).
        bool se_refusal = op.expect == Errc::insufficient_ecash;
        if (fresh.empty()) {
          if (!se_refusal && !uncertain)
            problems.push_back("no outbox entry for a document the SE must have signed");
          break;
        }
        if (se_refusal) {
          problems.push_back("the SE signed " + fresh[0].doc_id +
                             " though it had too little e-cash");
          break;
        }
        const auto& e = fresh[0];
        if (e.state != "done") {
          problems.push_back(e.doc_id + " left in state '" + e.state + "' (" + e.error + ")");
          break;
        }
        auto receipt = payload_of(e.receipt);
        auto doc = payload_of(e.doc);
        if (!receipt || !doc) {
          problems.push_back(e.doc_id + ": unreadable document or receipt");
          break;
        }
        if (doc->amount()->minor() != op.amount || doc->str("account") != op.account)
          problems.push_back(e.doc_id + " does not say what was asked");
        bool credited = receipt->str("status") != "refused";
        if (credited != (op.expect == Errc::ok))
          problems.push_back(e.doc_id + ": the bank answered " +
                             (credited ? "credited" : "refused (" + receipt->str("reason") + ")") +
                             ", the model predicted " + code_name(op.expect));
        if (!credited && receipt->str("reason") != code_name(op.expect))
          problems.push_back(e.doc_id + ": refused for " + receipt->str("reason") + ", predicted " +
                             code_name(op.expect));
        model_.add_doc(e.doc_id,
                       BankDoc{op.user, e.kind, op.account, op.amount, credited, e.doc, e.receipt});
        if (r && r->contains("balance_minor") && (*r)["balance_minor"] != model_.se[op.user])
          problems.push_back("the SE reported balance " + (*r)["balance_minor"].dump() +
                             ", model " + std::to_string(model_.se[op.user]));
        break;
      }
      case Kind::pay: {
        if (fresh.empty()) {
          if (op.expect == Errc::ok && !uncertain)
            problems.push_back("a paid note is not in the outbox");
          break;
        }
        const auto& e = fresh[0];
        auto doc = payload_of(e.doc);
        if (op.expect != Errc::ok) {
          problems.push_back("the SE signed note " + e.doc_id + " though it should refuse");
        } else if (e.kind != "payment" || !doc || doc->amount()->minor() != op.amount ||
                   doc->str("payee") != se(op.target).se_id) {
          problems.push_back("note " + e.doc_id + " does not say what was asked");
        } else if (r && (*r)["note"] != e.doc) {
          problems.push_back("the outbox holds another note than pay returned");
        } else {
          model_.add_note(Note{e.doc_id, e.doc, op.user, op.target, op.amount, false});
          line += " (" + e.doc_id + ")";
        }
        break;
      }
      case Kind::receive: {
        Note* n = model_.note(op.doc_id);
        bool landed = r.has_value();
        if (uncertain) {
          auto device = se::Device::open(se(op.target).dir);
          if (!device) {
            problems.push_back("cannot open " + op.target + "'s SE: " + device.error().message());
            break;
          }
          const Json state = (*device)->applet().state_json();
          landed = landed || state["received_notes"].contains(op.doc_id);
          line += landed ? " (landed)" : " (did not land)";
        }
        if (landed && op.expect == Errc::ok) {
          model_.deliver(*n);
          if (r && (*r)["balance_minor"] != model_.se[op.target])
            problems.push_back("the SE reported balance " + (*r)["balance_minor"].dump() +
                               ", model " + std::to_string(model_.se[op.target]));
        }
        break;
      }
      case Kind::race_topup: {
        if (race_.id.empty()) {
          problems.push_back("the SE did not sign the racing top-up");
          break;
        }
        if (race_.receipt.empty()) break;  // already reported: a submission failed
        if (race_.receipt != race_.other_receipt)
          problems.push_back("two copies of " + race_.id + " got different receipts");
        auto receipt = payload_of(race_.receipt);
        bool credited = receipt && receipt->str("status") != "refused";
        if (credited != (op.expect == Errc::ok))
          problems.push_back(race_.id + ": the bank answered " +
                             (credited ? "credited" : "refused") + ", the model predicted " +
                             code_name(op.expect));
        model_.add_doc(race_.id, BankDoc{op.user, "topup", op.account, op.amount, credited,
                                         race_.doc, race_.receipt, false});
        line += " (" + race_.id + ")";
        break;
      }
      case Kind::retry:
        if (r && ((*r)["adopted"] != 0 || (*r)["settled"] != 0 || (*r)["pending"] != 0 ||
                  (*r)["refused"] != 0))
          problems.push_back("retry with nothing pending did something: " + r->dump());
        break;
      case Kind::resend:
        if (r && (*r)["receipt"] != model_.docs.at(op.doc_id).receipt)
          problems.push_back("the bank answered " + op.doc_id + " with another receipt");
        break;
      case Kind::replay_receipt:
      case Kind::crash:
        break;
    }
    return problems;
  }

  // ---- Checking: the running system against the model, after every step.

  std::vector<std::string> check() {
    std::vector<std::string> p;
    auto expect_eq = [&p](const std::string& what, std::int64_t got, std::int64_t want) {
      if (got != want)
        p.push_back(what + ": " + std::to_string(got) + ", model " + std::to_string(want));
    };

    // Conservation (§3), and the audit's figures against the model.
    auto audit = cli::network_audit(net_->dir);
    if (!audit) {
      p.push_back("audit: " + audit.error().message());
    } else {
      const Json& a = *audit;
      if (!a["ok"].get<bool>()) p.push_back("audit not ok: " + a.dump());
      const Json& sys = a["system"]["CNY"];
      const Json& bank = a["banks"][0]["currencies"]["CNY"];
      expect_eq("notes in flight", sys["notes_in_flight_minor"], model_.in_flight());
      expect_eq("SE balances", sys["se_balances_minor"], model_.se_total());
      expect_eq("top-ups unapplied", sys["topups_unapplied_minor"], 0);
      expect_eq("deposits unsettled", sys["deposits_unsettled_minor"], 0);
      expect_eq("e-cash outstanding", sys["ecash_outstanding_minor"],
                model_.se_total() + model_.in_flight());
      expect_eq("bank e-cash outstanding", bank["ecash_outstanding_minor"],
                model_.se_total() + model_.in_flight());
      expect_eq("customer money", bank["customer_minor"], model_.accounts_total());
      // network_up pays cash_in_ into each user's account and into the first two users' joint account.
      expect_eq("money issued", bank["issued_minor"],
                cash_in_ * static_cast<std::int64_t>(kUsers.size() + 1));
    }

    // Every SE, read from its sealed state without taking its link.
    for (const auto& user : kUsers) {
      auto device = se::Device::open(se(user).dir);
      if (!device) {
        p.push_back(user + "'s SE: " + device.error().message());
        continue;
      }
      Json s = (*device)->applet().state_json();
      auto cny_of = [](const Json& m) {
        return m.contains("CNY") ? m["CNY"].get<std::int64_t>() : 0;
      };
      expect_eq(user + "'s SE balance", cny_of(s["balances"]), model_.se.at(user));
      if (!s["pending_topups"].empty() || !s["pending_deposits"].empty())
        p.push_back(user + "'s SE has pending documents: " + s["pending_topups"].dump() + " " +
                    s["pending_deposits"].dump());
      std::set<std::string> topups, deposits, received;
      std::int64_t sent = 0, got = 0;
      for (const auto& [id, d] : model_.docs)
        if (d.user == user) (d.kind == "topup" ? topups : deposits).insert(id);
      for (const auto& n : model_.notes) {
        if (n.payer == user) sent += n.amount;
        if (n.payee == user && n.delivered) got += n.amount, received.insert(n.id);
      }
      // Each id at most once (a set), and exactly the ones the model acknowledged.
      if (s["applied_topups"].get<std::set<std::string>>() != topups)
        p.push_back(user + "'s applied top-ups " + s["applied_topups"].dump() +
                    " differ from the model");
      if (s["settled_deposits"].get<std::set<std::string>>() != deposits)
        p.push_back(user + "'s settled deposits " + s["settled_deposits"].dump() +
                    " differ from the model");
      std::set<std::string> received_ids;
      for (const auto& [id, iat] : s["received_notes"].items()) received_ids.insert(id);
      if (received_ids != received)
        p.push_back(user + "'s received notes " + s["received_notes"].dump() +
                    " differ from the model");
      expect_eq(user + "'s notes sent", cny_of(s["sent_minor"]), sent);
      expect_eq(user + "'s notes received", cny_of(s["received_minor"]), got);
    }

    // The bank's own tables (a second, reading connection; WAL lets the bank write on).
    auto db = store::Db::open((std::filesystem::path(net_->bank_dir) / "bank.db").string());
    if (!db) {
      p.push_back("bank.db: " + db.error().message());
      return p;
    }
    auto rows = [&](store::Db& from, const std::string& sql, auto&& each) {
      auto st = from.prepare(sql);
      if (!st) return p.push_back("bank.db: " + st.error().message());
      for (;;) {
        auto row = st->step();
        if (!row) return p.push_back("bank.db: " + row.error().message());
        if (!*row) return;
        each(*st);
      }
    };
    std::map<std::string, std::int64_t> balances;
    rows(**db, "SELECT id, balance_minor FROM accounts",
         [&](store::Stmt& st) { balances[st.col_text(0)] = st.col_int(1); });
    for (const auto& [id, want] : model_.account)
      expect_eq("account " + id, balances.count(id) ? balances[id] : -1, want);
    rows(**db, "SELECT doc_id, COUNT(*) FROM journal GROUP BY doc_id HAVING COUNT(*) > 1",
         [&](store::Stmt& st) {
           p.push_back("journal holds " + st.col_text(0) + " " + std::to_string(st.col_int(1)) +
                       " times");
         });
    std::set<std::string> journal, want_journal;
    rows(**db, "SELECT doc_id FROM journal",
         [&](store::Stmt& st) { journal.insert(st.col_text(0)); });
    for (const auto& u : kUsers) want_journal.insert("cash-in/initial-" + u);
    want_journal.insert("cash-in/initial-" + cli::joint_account_id(kUsers[0], kUsers[1]));
    for (const auto& [id, d] : model_.docs)
      if (d.credited) want_journal.insert(id);
    if (journal != want_journal)
      p.push_back("the journal moved money for other documents than the model (" +
                  std::to_string(journal.size()) + " entries, model " +
                  std::to_string(want_journal.size()) + ")");
    std::map<std::string, std::string> processed;
    rows(**db, "SELECT doc_id, response FROM processed_documents",
         [&](store::Stmt& st) { processed[st.col_text(0)] = st.col_text(1); });
    for (const auto& [id, d] : model_.docs) {
      auto it = processed.find(id);
      if (it == processed.end())
        p.push_back("acknowledged " + id + " is not in processed_documents");
      else if (it->second != d.receipt)
        p.push_back("the bank's stored answer to " + id + " changed");
    }
    expect_eq("processed documents", static_cast<std::int64_t>(processed.size()),
              static_cast<std::int64_t>(model_.docs.size() + kUsers.size() + 1));

    // The registry, when the network has one: every note a payee SE took was
    // claimed there by that SE, no record names another SE or an unknown
    // document, and no (SE, seq) was used twice.
    const auto registry_db = std::filesystem::path(net_->registry_dir) / "registry.db";
    if (!net_->registry_dir.empty() && std::filesystem::exists(registry_db)) {
      auto reg = store::Db::open(registry_db.string());
      if (!reg) {
        p.push_back("registry.db: " + reg.error().message());
        return p;
      }
      std::set<std::string> claimed;
      rows(**reg, "SELECT doc_id, processor FROM records", [&](store::Stmt& st) {
        std::string id = st.col_text(0), processor = st.col_text(1);
        claimed.insert(id);
        if (Note* n = model_.note(id)) {
          if (processor != se(n->payee).se_id)
            p.push_back("the registry gave note " + id + " to " + processor + ", not its payee");
        } else if (!model_.docs.count(id)) {
          p.push_back("the registry holds a record for an unknown document " + id);
        }
      });
      for (const auto& n : model_.notes)
        if (n.delivered && !claimed.count(n.id))
          p.push_back("received note " + n.id + " has no registry record");
      rows(**reg, "SELECT se_id, seq FROM alerts", [&](store::Stmt& st) {
        p.push_back("registry alert: " + st.col_text(0) + " reused seq " +
                    std::to_string(st.col_int(1)));
      });
    }

    // Every terminal's outbox: exactly the model's documents, all settled.
    for (const auto& user : kUsers) {
      std::size_t want = 0;
      for (const auto& [_, d] : model_.docs) want += d.user == user && d.in_outbox;
      for (const auto& n : model_.notes) want += n.payer == user;
      auto entries = outbox(user);
      if (entries.size() != want)
        p.push_back(user + "'s outbox holds " + std::to_string(entries.size()) +
                    " documents, model " + std::to_string(want));
      for (const auto& e : entries) {
        if (e.kind == "payment") {
          Note* n = model_.note(e.doc_id);
          if (!n || n->jws != e.doc)
            p.push_back(user + "'s outbox has an unknown note " + e.doc_id);
          continue;
        }
        auto d = model_.docs.find(e.doc_id);
        if (d == model_.docs.end() || !d->second.in_outbox)
          p.push_back(user + "'s outbox has an unknown " + e.kind + " " + e.doc_id);
        else if (e.state != "done" || e.receipt != d->second.receipt)
          p.push_back(user + "'s " + e.doc_id + " is '" + e.state + "' or has another receipt");
      }
    }
    return p;
  }

  // ---- The run

  void run_model() {
    victims_.clear();
    for (const auto& svc : net_->services) victims_.push_back(svc.name);
    for (const auto& u : kUsers) {
      model_.se[u] = 0;
      model_.account[account_of(u)] = cash_in_;
    }
    const int steps = env_steps();
    const bool verbose = std::getenv("ZF_MODEL_VERBOSE") != nullptr;
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::string> problems = check();
    if (!problems.empty()) return report(-1, problems);
    for (int step = 0; step < steps; ++step) {
      auto rng = step_rng(seed_, step);
      Op op = plan(rng);
      std::string line = std::to_string(step) + ": " + describe(op);
      problems = run_step(op, line);
      if (verbose) std::printf("  %s\n", line.c_str());
      log_.push_back(line);
      auto more = check();
      problems.insert(problems.end(), more.begin(), more.end());
      if (!problems.empty()) return report(step, problems);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    int delivered = 0;
    for (const auto& n : model_.notes) delivered += n.delivered;
    std::printf(
        "model seed %llu: %d steps in %.1f s, %d kills, %d operations cut off by a kill, %zu bank "
        "documents, %zu notes (%d delivered), in flight %s\n",
        static_cast<unsigned long long>(seed_), steps, secs, kills_, interrupted_,
        model_.docs.size(), model_.notes.size(), delivered, cny(model_.in_flight()).c_str());
  }

  void report(int step, const std::vector<std::string>& problems) {
    std::ostringstream out;
    out << "model test failed: seed " << seed_ << ", step " << step << "\n"
        << "reproduce: " << (midop_kills_ ? "" : "ZF_MODEL_MIDOP_KILLS=0 ")
        << "ZF_MODEL_SEED=" << seed_ << " ZF_MODEL_STEPS=" << step + 1
        << " build/tests/system/system_tests --gtest_filter='Model*'\n"
        << "(a kill inside an operation lands by timing: the log shows how each one landed)\n"
        << "operation log:\n";
    for (const auto& l : log_) out << "  " << l << "\n";
    out << "problems:\n";
    for (const auto& pr : problems) out << "  " << pr << "\n";
    ADD_FAILURE() << out.str();
  }

  // The documents of the last racing top-up (not in any outbox).
  struct Race {
    std::string id, doc, receipt, other_receipt;
  };
  Race race_;
  std::uint64_t seed_ = 0;
  bool midop_kills_ = true;
  std::int64_t cash_in_ = 0;      // paid into each account by network_up
  std::int64_t max_payment_ = 0;  // the SEs' single-payment limit
  Model model_;
  std::vector<std::string> victims_;
  std::vector<std::string> log_;
  int kills_ = 0, interrupted_ = 0;
};

TEST_P(ModelTest, RandomOperationsWithCrashesAgreeWithTheModel) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  run_model();
}

// No instantiation prefix: the tests are ModelTest.<name>/<index of the seed>, so
// --gtest_filter='Model*' and ctest -E '^ModelTest' find them.
INSTANTIATE_TEST_SUITE_P(, ModelTest,
                         ::testing::Range(0, static_cast<int>(std::size(kDefaultSeeds)) + 1));

}  // namespace
}  // namespace zf::test
