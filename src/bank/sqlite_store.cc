// BankStore over one SQLite file (bank.db). One connection, one writer at a time.
#include <mutex>

#include "bank/store.h"
#include "store/sqlite.h"

namespace zf::bank {
namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  currency TEXT NOT NULL,
  user_id TEXT NOT NULL DEFAULT '',
  se_id TEXT,
  balance_minor INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
  entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
  doc_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS postings (
  entry_id INTEGER NOT NULL REFERENCES journal(entry_id),
  account_id TEXT NOT NULL REFERENCES accounts(id),
  amount_minor INTEGER NOT NULL,
  PRIMARY KEY (entry_id, account_id)
);
CREATE INDEX IF NOT EXISTS postings_by_account ON postings(account_id, entry_id);
CREATE TABLE IF NOT EXISTS processed_documents (
  doc_id TEXT PRIMARY KEY,            -- the exactly-once key (DESIGN.md §7)
  signer TEXT NOT NULL,
  doc_type TEXT NOT NULL,
  payload_digest BLOB NOT NULL,
  response TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS used_queries (
  signer TEXT NOT NULL,               -- single-use key of unsequenced documents
  doc_id TEXT NOT NULL,
  exp INTEGER NOT NULL,
  PRIMARY KEY (signer, doc_id)
);
CREATE INDEX IF NOT EXISTS used_queries_by_exp ON used_queries(exp);
CREATE TABLE IF NOT EXISTS guards (
  key TEXT PRIMARY KEY,               -- further exactly-once keys (store.h Effects)
  doc_id TEXT NOT NULL                -- the document that took it
);
CREATE TABLE IF NOT EXISTS holds (
  id TEXT PRIMARY KEY,                -- the hold.request's id (DESIGN.md §6.8)
  payer_account TEXT NOT NULL REFERENCES accounts(id),
  payee_account TEXT NOT NULL REFERENCES accounts(id),
  payer_se TEXT NOT NULL,
  payee_se TEXT NOT NULL,
  currency TEXT NOT NULL,
  amount_minor INTEGER NOT NULL,
  release_at INTEGER NOT NULL,
  status TEXT NOT NULL,               -- held, confirmed, released, expired
  resolved_by TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_due ON holds(status, release_at);
CREATE TABLE IF NOT EXISTS joint_accounts (
  account_id TEXT PRIMARY KEY REFERENCES accounts(id),  -- DESIGN.md §6.9
  threshold INTEGER NOT NULL          -- distinct co-managers who must sign a spend
);
CREATE TABLE IF NOT EXISTS joint_members (
  account_id TEXT NOT NULL REFERENCES joint_accounts(account_id),
  se_id TEXT NOT NULL,
  PRIMARY KEY (account_id, se_id)
);
CREATE TABLE IF NOT EXISTS process_numbers (
  number TEXT PRIMARY KEY,            -- DESIGN.md §6.10; its use is the guard pn:<number>
  se_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS notices (
  entry_id INTEGER NOT NULL REFERENCES journal(entry_id),  -- feed items that are not postings (store.h Effects)
  account_id TEXT NOT NULL REFERENCES accounts(id),
  held_minor INTEGER NOT NULL,
  PRIMARY KEY (account_id, entry_id)
);
CREATE TABLE IF NOT EXISTS admin_tokens (
  token_hash BLOB PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
)sql";

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

class SqliteBankStore final : public BankStore {
 public:
  explicit SqliteBankStore(std::unique_ptr<store::Db> db) : db_(std::move(db)) {}

  Status add_admin_token(ByteView token_hash, const std::string& name) override {
    std::lock_guard lock(mu_);
    return store::add_admin_token(*db_, token_hash, name);
  }

  Result<bool> is_admin_token(ByteView token_hash) override {
    std::lock_guard lock(mu_);
    return store::is_admin_token(*db_, token_hash);
  }

  Result<AccountRecord> open_account(const AccountRecord& account) override {
    if (!ledger::is_customer_money(account.kind) || account.kind == ledger::AccountKind::hold)
      return fail(Errc::bad_field, "only customer and joint accounts are opened directly", "kind");
    std::lock_guard lock(mu_);
    std::optional<AccountRecord> existing;
    Status s = db_->transaction([&]() -> Status {
      auto found = find_locked(account.id);
      if (!found) return up(found);
      if (*found) {
        existing = **found;
        return {};
      }
      if (auto r = insert_account(account); !r) return r;
      if (account.kind == ledger::AccountKind::joint)
        if (auto r = insert_joint(account); !r) return r;
      // The currency's system accounts come into being with its first account.
      AccountRecord issuance{ledger::issuance_account_id(account.currency),
                             ledger::AccountKind::issuance,
                             account.currency,
                             "",
                             std::nullopt,
                             0,
                             account.created_at,
                             {},
                             0};
      AccountRecord outstanding{ledger::outstanding_account_id(account.currency),
                                ledger::AccountKind::ecash_outstanding,
                                account.currency,
                                "",
                                std::nullopt,
                                0,
                                account.created_at,
                             {},
                             0};
      for (const auto* sys : {&issuance, &outstanding}) {
        auto f = find_locked(sys->id);
        if (!f) return up(f);
        if (!*f)
          if (auto r = insert_account(*sys); !r) return r;
      }
      return {};
    });
    if (!s) return std::unexpected(s.error());
    if (existing) {
      if (existing->kind != account.kind || existing->currency != account.currency ||
          existing->user_id != account.user_id || existing->se_id != account.se_id ||
          existing->co_managers != account.co_managers || existing->threshold != account.threshold)
        return fail(Errc::conflict, "account " + account.id + " exists with other settings",
                    "account");
      return *existing;
    }
    AccountRecord out = account;
    out.balance_minor = 0;
    return out;
  }

  Result<std::optional<AccountRecord>> find_account(const std::string& id) override {
    std::lock_guard lock(mu_);
    return find_locked(id);
  }

  Result<std::vector<AccountRecord>> list_accounts() override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare(
        "SELECT id, kind, currency, user_id, se_id, balance_minor, created_at FROM accounts ORDER "
        "BY id");
    if (!st) return up(st);
    std::vector<AccountRecord> out;
    for (;;) {
      auto row = st->step();
      if (!row) return up(row);
      if (!*row) break;
      auto a = row_to_account(*st);
      if (!a) return up(a);
      out.push_back(std::move(*a));
    }
    for (auto& a : out)
      if (auto j = load_joint(a); !j) return up(j);
    return out;
  }

  Result<std::vector<HistoryItem>> history(const std::string& account_id, int limit) override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare(
        "SELECT j.entry_id, j.doc_id, j.kind, p.amount_minor, j.created_at FROM postings p"
        " JOIN journal j ON j.entry_id = p.entry_id WHERE p.account_id = ?1"
        " ORDER BY p.entry_id DESC LIMIT ?2");
    if (!st) return up(st);
    st->bind(1, account_id).bind(2, std::int64_t{limit});
    std::vector<HistoryItem> out;
    for (;;) {
      auto row = st->step();
      if (!row) return up(row);
      if (!*row) break;
      out.push_back(
          {st->col_int(0), st->col_text(1), st->col_text(2), st->col_int(3), st->col_int(4)});
    }
    return out;
  }

  Result<std::vector<FeedItem>> feed(const std::string& account_id, std::int64_t after, int limit) override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare(
        "SELECT j.entry_id, j.doc_id, j.kind, f.amount_minor, j.created_at, COALESCE(d.response, ''), f.held_minor"
        " FROM (SELECT entry_id, amount_minor, 0 AS held_minor FROM postings WHERE account_id = ?1 AND entry_id > ?2"
        "       UNION ALL"
        "       SELECT entry_id, 0, held_minor FROM notices WHERE account_id = ?1 AND entry_id > ?2) f"
        " JOIN journal j ON j.entry_id = f.entry_id LEFT JOIN processed_documents d ON d.doc_id = j.doc_id"
        " ORDER BY f.entry_id LIMIT ?3");
    if (!st) return up(st);
    st->bind(1, account_id).bind(2, after).bind(3, std::int64_t{limit});
    std::vector<FeedItem> out;
    for (;;) {
      auto row = st->step();
      if (!row) return up(row);
      if (!*row) break;
      out.push_back({st->col_int(0), st->col_text(1), st->col_text(2), st->col_int(3), st->col_int(4), st->col_text(5),
                     st->col_int(6)});
    }
    return out;
  }

  Result<std::optional<ProcessedDocument>> find_processed(const std::string& doc_id) override {
    std::lock_guard lock(mu_);
    return find_processed_locked(doc_id);
  }

  Result<Applied> apply(const DocKey& doc, const ledger::JournalEntry& entry,
                        const std::string& response, std::int64_t now, const Effects& fx) override {
    std::lock_guard lock(mu_);
    Applied out;
    Status s = db_->transaction([&]() -> Status {
      // SAFETY-CRITICAL: the double-processing guard. The document id is claimed
      // with an insert-if-absent in the same transaction as the money movement
      // below, so a document moves money at most once even across crashes and
      // concurrent retries; if anything below fails, the claim rolls back with it.
      auto claim = db_->prepare(
          "INSERT INTO processed_documents(doc_id, signer, doc_type, payload_digest, response, "
          "created_at)"
          " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(doc_id) DO NOTHING");
      if (!claim) return up(claim);
      if (auto r = claim->bind(1, doc.doc_id)
                       .bind(2, doc.signer)
                       .bind(3, doc.doc_type)
                       .bind(4, ByteView(doc.payload_digest))
                       .bind(5, response)
                       .bind(6, now)
                       .run();
          !r)
        return r;
      if (db_->changes() == 0) {
        auto prior = find_processed_locked(doc.doc_id);
        if (!prior) return up(prior);
        if (!*prior) return fail(Errc::internal, "processed document vanished");
        const DocKey& k = (*prior)->key;
        if (k.signer != doc.signer || k.doc_type != doc.doc_type ||
            k.payload_digest != doc.payload_digest)
          return fail(Errc::doc_id_reused,
                      "another document with id " + doc.doc_id + " was already processed", "id");
        out.response = (*prior)->response;
        out.replayed = true;
        return {};  // an idempotent retry: commit nothing new
      }

      // SAFETY-CRITICAL: the further guards (a hold ends once across confirm,
      // release and expiry) are taken in this same transaction, so two
      // documents racing for one key cannot both move money.
      for (const auto& g : fx.guards)
        if (auto t = take_guard(g, doc.doc_id); !t) return t;
      if (fx.open_hold)
        if (auto h = open_hold(*fx.open_hold); !h) return h;
      if (fx.close_hold)
        if (auto h = close_hold(fx.close_hold->first, fx.close_hold->second, doc.doc_id); !h) return h;
      // An entry without postings records a refusal: the document is consumed
      // (it can never move money later) and nothing else is written.
      if (entry.postings.empty()) {
        out.response = response;
        return {};
      }
      // The books' invariant is asserted before anything is written.
      if (auto c = ledger::check_entry(entry); !c) return c;
      std::vector<ledger::Account> touched;
      for (const auto& p : entry.postings) {
        auto a = find_locked(p.account_id);
        if (!a) return up(a);
        if (*a) touched.push_back({(*a)->id, (*a)->kind, (*a)->currency, (*a)->balance_minor});
      }
      auto next = ledger::apply_entry(entry, std::move(touched));
      if (!next) return up(next);

      auto j = db_->prepare(
          "INSERT INTO journal(doc_id, kind, created_at) VALUES (?1, ?2, ?3) RETURNING entry_id");
      if (!j) return up(j);
      auto row = j->bind(1, entry.doc_id).bind(2, entry.kind).bind(3, now).step();
      if (!row) return up(row);
      if (!*row) return fail(Errc::internal, "no entry id returned");
      out.entry_id = j->col_int(0);
      if (auto r = j->run(); !r) return r;
      for (const auto& p : entry.postings) {
        auto ins = db_->prepare(
            "INSERT INTO postings(entry_id, account_id, amount_minor) VALUES (?1, ?2, ?3)");
        if (!ins) return up(ins);
        if (auto r = ins->bind(1, out.entry_id).bind(2, p.account_id).bind(3, p.amount_minor).run();
            !r)
          return r;
      }
      for (const auto& [account, held] : fx.notices) {
        auto ins = db_->prepare("INSERT INTO notices(entry_id, account_id, held_minor) VALUES (?1, ?2, ?3)");
        if (!ins) return up(ins);
        if (auto r = ins->bind(1, out.entry_id).bind(2, account).bind(3, held).run(); !r) return r;
      }
      for (const auto& a : *next) {
        auto upd = db_->prepare("UPDATE accounts SET balance_minor = ?1 WHERE id = ?2");
        if (!upd) return up(upd);
        if (auto r = upd->bind(1, a.balance_minor).bind(2, a.id).run(); !r) return r;
        if (db_->changes() != 1) return fail(Errc::internal, "balance update missed " + a.id);
      }
      out.response = response;
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return out;
  }

  Result<std::optional<std::string>> guard_holder(const std::string& key) override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare("SELECT doc_id FROM guards WHERE key = ?1");
    if (!st) return up(st);
    auto row = st->bind(1, key).step();
    if (!row) return up(row);
    if (!*row) return std::optional<std::string>{};
    return std::optional<std::string>(st->col_text(0));
  }

  Status add_process_no(const ProcessNumber& n, std::int64_t now) override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare("INSERT INTO process_numbers(number, se_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)");
    if (!st) return up(st);
    return st->bind(1, n.number).bind(2, n.se_id).bind(3, n.expires_at).bind(4, now).run();
  }

  Result<std::optional<ProcessNumber>> find_process_no(const std::string& number) override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare("SELECT number, se_id, expires_at FROM process_numbers WHERE number = ?1");
    if (!st) return up(st);
    auto row = st->bind(1, number).step();
    if (!row) return up(row);
    if (!*row) return std::optional<ProcessNumber>{};
    return std::optional<ProcessNumber>(ProcessNumber{st->col_text(0), st->col_text(1), st->col_int(2)});
  }

  Result<std::optional<HoldRecord>> find_hold(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare(std::string(kHoldColumns) + " WHERE id = ?1");
    if (!st) return up(st);
    auto row = st->bind(1, id).step();
    if (!row) return up(row);
    if (!*row) return std::optional<HoldRecord>{};
    return std::optional<HoldRecord>(row_to_hold(*st));
  }

  Result<std::vector<HoldRecord>> due_holds(std::int64_t now, int limit) override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare(std::string(kHoldColumns) +
                           " WHERE status = 'held' AND release_at <= ?1 ORDER BY release_at, id LIMIT ?2");
    if (!st) return up(st);
    st->bind(1, now).bind(2, std::int64_t{limit});
    std::vector<HoldRecord> out;
    for (;;) {
      auto row = st->step();
      if (!row) return up(row);
      if (!*row) break;
      out.push_back(row_to_hold(*st));
    }
    return out;
  }

  Result<bool> use_once(const std::string& signer, const std::string& doc_id, std::int64_t exp,
                        std::int64_t now) override {
    std::lock_guard lock(mu_);
    bool first = false;
    Status s = db_->transaction([&]() -> Status {
      auto prune = db_->prepare("DELETE FROM used_queries WHERE exp < ?1");
      if (!prune) return up(prune);
      if (auto r = prune->bind(1, now - kUseRetentionS).run(); !r) return r;
      auto ins = db_->prepare(
          "INSERT INTO used_queries(signer, doc_id, exp) VALUES (?1, ?2, ?3)"
          " ON CONFLICT(signer, doc_id) DO NOTHING");
      if (!ins) return up(ins);
      if (auto r = ins->bind(1, signer).bind(2, doc_id).bind(3, exp).run(); !r) return r;
      first = db_->changes() == 1;
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return first;
  }

  Result<ledger::AuditReport> audit() override {
    std::lock_guard lock(mu_);
    ledger::Auditor auditor;
    std::map<std::string, std::string> currency_of;
    // One read transaction: a consistent snapshot of accounts and journal.
    Status s = db_->transaction([&]() -> Status {
      auto st = db_->prepare("SELECT id, kind, currency, balance_minor FROM accounts ORDER BY id");
      if (!st) return up(st);
      for (;;) {
        auto row = st->step();
        if (!row) return up(row);
        if (!*row) break;
        auto kind = ledger::kind_from_name(st->col_text(1));
        if (!kind) return up(kind);
        ledger::Account a{st->col_text(0), *kind, st->col_text(2), st->col_int(3)};
        currency_of[a.id] = a.currency;
        auditor.add_account(a);
      }
      // Postings in entry order; entries without postings show up as empty entries.
      auto je = db_->prepare(
          "SELECT j.entry_id, j.doc_id, j.kind, p.account_id, p.amount_minor FROM journal j"
          " LEFT JOIN postings p ON p.entry_id = j.entry_id ORDER BY j.entry_id");
      if (!je) return up(je);
      ledger::JournalEntry cur;
      bool have = false;
      for (;;) {
        auto row = je->step();
        if (!row) return up(row);
        if (!*row) break;
        std::int64_t id = je->col_int(0);
        if (!have || id != cur.entry_id) {
          if (have) auditor.add_entry(cur);
          cur = ledger::JournalEntry{id, je->col_text(1), je->col_text(2), {}};
          have = true;
        }
        if (!je->col_null(3)) {
          std::string acc = je->col_text(3);
          auto c = currency_of.find(acc);
          cur.postings.push_back(
              {acc, c == currency_of.end() ? std::string("???") : c->second, je->col_int(4)});
        }
      }
      if (have) auditor.add_entry(cur);
      auto holds = db_->prepare("SELECT id, currency, amount_minor FROM holds WHERE status = 'held' ORDER BY id");
      if (!holds) return up(holds);
      for (;;) {
        auto row = holds->step();
        if (!row) return up(row);
        if (!*row) break;
        auditor.add_open_hold(holds->col_text(0), holds->col_text(1), holds->col_int(2));
      }
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return auditor.finish();
  }

 private:
  static constexpr std::string_view kHoldColumns =
      "SELECT id, payer_account, payee_account, payer_se, payee_se, currency, amount_minor, release_at,"
      " status, resolved_by, created_at FROM holds";

  static HoldRecord row_to_hold(const store::Stmt& st) {
    return HoldRecord{st.col_text(0), st.col_text(1), st.col_text(2), st.col_text(3),
                      st.col_text(4), st.col_text(5), st.col_int(6),  st.col_int(7),
                      st.col_text(8), st.col_text(9), st.col_int(10)};
  }

  // Inserts the guard's key for `doc_id` if absent; taken by another document: its code, naming the holder.
  Status take_guard(const Guard& guard, const std::string& doc_id) {
    const std::string& key = guard.key;
    auto ins = db_->prepare("INSERT INTO guards(key, doc_id) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING");
    if (!ins) return up(ins);
    if (auto r = ins->bind(1, key).bind(2, doc_id).run(); !r) return r;
    if (db_->changes() == 1) return {};
    auto st = db_->prepare("SELECT doc_id FROM guards WHERE key = ?1");
    if (!st) return up(st);
    auto row = st->bind(1, key).step();
    if (!row) return up(row);
    if (!*row) return fail(Errc::internal, "guard " + key + " vanished");
    std::string holder = st->col_text(0);
    if (holder == doc_id) return {};
    Error e{guard.taken, key, key + " was already taken by " + holder};
    e.evidence = holder;
    return std::unexpected(std::move(e));
  }

  // A new hold, and the currency's hold account if this is its first hold.
  Status open_hold(const HoldRecord& h) {
    std::string account = ledger::hold_account_id(h.currency);
    auto found = find_locked(account);
    if (!found) return up(found);
    if (!*found)
      if (auto r = insert_account({account, ledger::AccountKind::hold, h.currency, "", std::nullopt, 0, h.created_at, {}, 0}); !r)
        return r;
    auto ins = db_->prepare(
        "INSERT INTO holds(id, payer_account, payee_account, payer_se, payee_se, currency, amount_minor,"
        " release_at, status, resolved_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'held', '', ?9)");
    if (!ins) return up(ins);
    return ins->bind(1, h.id)
        .bind(2, h.payer_account)
        .bind(3, h.payee_account)
        .bind(4, h.payer_se)
        .bind(5, h.payee_se)
        .bind(6, h.currency)
        .bind(7, h.amount_minor)
        .bind(8, h.release_at)
        .bind(9, h.created_at)
        .run();
  }

  Status close_hold(const std::string& id, const std::string& status, const std::string& by) {
    auto upd = db_->prepare("UPDATE holds SET status = ?1, resolved_by = ?2 WHERE id = ?3 AND status = 'held'");
    if (!upd) return up(upd);
    if (auto r = upd->bind(1, status).bind(2, by).bind(3, id).run(); !r) return r;
    if (db_->changes() != 1) return fail(Errc::conflict, "hold " + id + " is not held", "hold_id");
    return {};
  }

  Result<AccountRecord> row_to_account(const store::Stmt& st) {
    auto kind = ledger::kind_from_name(st.col_text(1));
    if (!kind) return up(kind);
    AccountRecord a{st.col_text(0), *kind,         st.col_text(2), st.col_text(3),
                    std::nullopt,   st.col_int(5), st.col_int(6), {}, 0};
    if (!st.col_null(4)) a.se_id = st.col_text(4);
    return a;
  }

  Result<std::optional<AccountRecord>> find_locked(const std::string& id) {
    auto st = db_->prepare(
        "SELECT id, kind, currency, user_id, se_id, balance_minor, created_at FROM accounts WHERE "
        "id = ?1");
    if (!st) return up(st);
    auto row = st->bind(1, id).step();
    if (!row) return up(row);
    if (!*row) return std::optional<AccountRecord>{};
    auto a = row_to_account(*st);
    if (!a) return up(a);
    if (auto j = load_joint(*a); !j) return up(j);
    return std::optional<AccountRecord>(std::move(*a));
  }

  // A joint account's rule: its threshold and co-managers (sorted).
  Status load_joint(AccountRecord& a) {
    if (a.kind != ledger::AccountKind::joint) return {};
    auto t = db_->prepare("SELECT threshold FROM joint_accounts WHERE account_id = ?1");
    if (!t) return up(t);
    auto row = t->bind(1, a.id).step();
    if (!row) return up(row);
    if (!*row) return fail(Errc::internal, "joint account " + a.id + " has no rule");
    a.threshold = static_cast<int>(t->col_int(0));
    auto m = db_->prepare("SELECT se_id FROM joint_members WHERE account_id = ?1 ORDER BY se_id");
    if (!m) return up(m);
    m->bind(1, a.id);
    a.co_managers.clear();
    for (;;) {
      auto r = m->step();
      if (!r) return up(r);
      if (!*r) break;
      a.co_managers.push_back(m->col_text(0));
    }
    return {};
  }

  Status insert_joint(const AccountRecord& a) {
    auto t = db_->prepare("INSERT INTO joint_accounts(account_id, threshold) VALUES (?1, ?2)");
    if (!t) return up(t);
    if (auto r = t->bind(1, a.id).bind(2, std::int64_t{a.threshold}).run(); !r) return r;
    for (const auto& se : a.co_managers) {
      auto m = db_->prepare("INSERT INTO joint_members(account_id, se_id) VALUES (?1, ?2)");
      if (!m) return up(m);
      if (auto r = m->bind(1, a.id).bind(2, se).run(); !r) return r;
    }
    return {};
  }

  Status insert_account(const AccountRecord& a) {
    auto st = db_->prepare(
        "INSERT INTO accounts(id, kind, currency, user_id, se_id, balance_minor, created_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)");
    if (!st) return up(st);
    st->bind(1, a.id)
        .bind(2, ledger::kind_name(a.kind))
        .bind(3, a.currency)
        .bind(4, a.user_id)
        .bind(6, a.created_at);
    if (a.se_id)
      st->bind(5, *a.se_id);
    else
      st->bind_null(5);
    return st->run();
  }

  Result<std::optional<ProcessedDocument>> find_processed_locked(const std::string& doc_id) {
    auto st = db_->prepare(
        "SELECT doc_id, signer, doc_type, payload_digest, response, created_at FROM "
        "processed_documents"
        " WHERE doc_id = ?1");
    if (!st) return up(st);
    auto row = st->bind(1, doc_id).step();
    if (!row) return up(row);
    if (!*row) return std::optional<ProcessedDocument>{};
    ProcessedDocument d{{st->col_text(0), st->col_text(1), st->col_text(2), st->col_blob(3)},
                        st->col_text(4),
                        st->col_int(5)};
    return std::optional<ProcessedDocument>(std::move(d));
  }

  std::mutex mu_;  // one connection: one statement sequence at a time
  std::unique_ptr<store::Db> db_;
};

}  // namespace

Result<std::unique_ptr<BankStore>> open_sqlite_store(const std::string& path) {
  auto db = store::Db::open(path);
  if (!db) return std::unexpected(db.error());
  if (auto s = (*db)->exec(kSchema); !s) return std::unexpected(s.error());
  return std::unique_ptr<BankStore>(new SqliteBankStore(std::move(*db)));
}

}  // namespace zf::bank
