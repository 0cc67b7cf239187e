// BankStore over store::Database: the bank's exactly-once rules and ledger
// checks, written once, on SQLite (bank.db) or PostgreSQL.
#include <algorithm>
#include <limits>
#include <map>

#include "bank/store.h"
#include "store/sql.h"

namespace zf::bank {
namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  currency TEXT NOT NULL,
  user_id TEXT NOT NULL DEFAULT '',
  se_id TEXT,
  balance_minor BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
  entry_id {id},
  doc_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS postings (
  entry_id BIGINT NOT NULL REFERENCES journal(entry_id),
  account_id TEXT NOT NULL REFERENCES accounts(id),
  amount_minor BIGINT NOT NULL,
  PRIMARY KEY (entry_id, account_id)
);
CREATE INDEX IF NOT EXISTS postings_by_account ON postings(account_id, entry_id);
CREATE TABLE IF NOT EXISTS processed_documents (
  doc_id TEXT PRIMARY KEY,            -- the exactly-once key (DESIGN.md §7)
  signer TEXT NOT NULL,
  doc_type TEXT NOT NULL,
  payload_digest {blob} NOT NULL,
  response TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS used_queries (
  signer TEXT NOT NULL,               -- single-use key of unsequenced documents
  doc_id TEXT NOT NULL,
  exp BIGINT NOT NULL,
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
  amount_minor BIGINT NOT NULL,
  release_at BIGINT NOT NULL,
  status TEXT NOT NULL,               -- held, confirmed, released, expired
  resolved_by TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_due ON holds(status, release_at);
CREATE TABLE IF NOT EXISTS joint_accounts (
  account_id TEXT PRIMARY KEY REFERENCES accounts(id),  -- DESIGN.md §6.9
  threshold BIGINT NOT NULL          -- distinct co-managers who must sign a spend
);
CREATE TABLE IF NOT EXISTS joint_members (
  account_id TEXT NOT NULL REFERENCES joint_accounts(account_id),
  se_id TEXT NOT NULL,
  PRIMARY KEY (account_id, se_id)
);
CREATE TABLE IF NOT EXISTS process_numbers (
  number TEXT PRIMARY KEY,            -- DESIGN.md §6.10; its use is the guard pn:<number>
  se_id TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS notices (
  entry_id BIGINT NOT NULL REFERENCES journal(entry_id),  -- feed items that are not postings (store.h Effects)
  account_id TEXT NOT NULL REFERENCES accounts(id),
  held_minor BIGINT NOT NULL,
  PRIMARY KEY (account_id, entry_id)
);
CREATE TABLE IF NOT EXISTS admin_tokens (
  token_hash {blob} PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
)sql";

using store::Conn;
using store::Database;
using store::Rows;

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

constexpr std::string_view kAccountColumns =
    "SELECT id, kind, currency, user_id, se_id, balance_minor, created_at FROM accounts";
constexpr std::string_view kHoldColumns =
    "SELECT id, payer_account, payee_account, payer_se, payee_se, currency, amount_minor, release_at,"
    " status, resolved_by, created_at FROM holds";

HoldRecord row_to_hold(const Rows& r, std::size_t i) {
  return HoldRecord{r.text(i, 0), r.text(i, 1),    r.text(i, 2),  r.text(i, 3), r.text(i, 4), r.text(i, 5),
                    r.integer(i, 6), r.integer(i, 7), r.text(i, 8), r.text(i, 9), r.integer(i, 10)};
}

Result<AccountRecord> row_to_account(const Rows& r, std::size_t i) {
  auto kind = ledger::kind_from_name(r.text(i, 1));
  if (!kind) return up(kind);
  return AccountRecord{r.text(i, 0), *kind, r.text(i, 2), r.text(i, 3), r.optional_text(i, 4), r.integer(i, 5),
                       r.integer(i, 6), {}, 0};
}

// A joint account's rule: its threshold and co-managers (sorted).
Status load_joint(Conn& c, AccountRecord& a) {
  if (a.kind != ledger::AccountKind::joint) return {};
  auto t = c.query("SELECT threshold FROM joint_accounts WHERE account_id = ?1", {a.id});
  if (!t) return up(t);
  if (t->empty()) return fail(Errc::internal, "joint account " + a.id + " has no rule");
  a.threshold = static_cast<int>(t->integer(0, 0));
  auto m = c.query("SELECT se_id FROM joint_members WHERE account_id = ?1 ORDER BY se_id", {a.id});
  if (!m) return up(m);
  a.co_managers.clear();
  for (std::size_t i = 0; i < m->size(); ++i) a.co_managers.push_back(m->text(i, 0));
  return {};
}

// The account, or nullopt; `lock` holds its row until the transaction ends.
Result<std::optional<AccountRecord>> find_account_in(Conn& c, const std::string& id, bool lock = false) {
  auto r = c.query(std::string(kAccountColumns) + " WHERE id = ?1" + std::string(lock ? c.for_update() : ""), {id});
  if (!r) return up(r);
  if (r->empty()) return std::optional<AccountRecord>{};
  auto a = row_to_account(*r, 0);
  if (!a) return up(a);
  if (auto j = load_joint(c, *a); !j) return up(j);
  return std::optional<AccountRecord>(std::move(*a));
}

// Inserts the account unless its id exists; true if this call inserted it.
Result<bool> insert_account(Conn& c, const AccountRecord& a) {
  auto r = c.query(
      "INSERT INTO accounts(id, kind, currency, user_id, se_id, balance_minor, created_at)"
      " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT(id) DO NOTHING",
      {a.id, ledger::kind_name(a.kind), a.currency, a.user_id, a.se_id, a.created_at});
  if (!r) return up(r);
  return r->changed() == 1;
}

Status insert_joint(Conn& c, const AccountRecord& a) {
  if (auto r = c.query("INSERT INTO joint_accounts(account_id, threshold) VALUES (?1, ?2)", {a.id, a.threshold}); !r)
    return up(r);
  for (const auto& se : a.co_managers)
    if (auto r = c.query("INSERT INTO joint_members(account_id, se_id) VALUES (?1, ?2)", {a.id, se}); !r) return up(r);
  return {};
}

Result<std::optional<ProcessedDocument>> find_processed_in(Conn& c, const std::string& doc_id) {
  auto r = c.query(
      "SELECT doc_id, signer, doc_type, payload_digest, response, created_at FROM processed_documents"
      " WHERE doc_id = ?1",
      {doc_id});
  if (!r) return up(r);
  if (r->empty()) return std::optional<ProcessedDocument>{};
  return std::optional<ProcessedDocument>(ProcessedDocument{
      {r->text(0, 0), r->text(0, 1), r->text(0, 2), r->blob(0, 3)}, r->text(0, 4), r->integer(0, 5)});
}

// Inserts the guard's key for `doc_id` if absent; taken by another document: its code, naming the holder.
Status take_guard(Conn& c, const Guard& guard, const std::string& doc_id) {
  const std::string& key = guard.key;
  auto ins = c.query("INSERT INTO guards(key, doc_id) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING", {key, doc_id});
  if (!ins) return up(ins);
  if (ins->changed() == 1) return {};
  auto r = c.query("SELECT doc_id FROM guards WHERE key = ?1", {key});
  if (!r) return up(r);
  if (r->empty()) return fail(Errc::internal, "guard " + key + " vanished");
  const std::string& holder = r->text(0, 0);
  if (holder == doc_id) return {};
  Error e{guard.taken, key, key + " was already taken by " + holder};
  e.evidence = holder;
  return std::unexpected(std::move(e));
}

// A new hold, and the currency's hold account if this is its first hold.
Status open_hold(Conn& c, const HoldRecord& h) {
  if (auto r = insert_account(c, {ledger::hold_account_id(h.currency), ledger::AccountKind::hold, h.currency, "",
                                  std::nullopt, 0, h.created_at, {}, 0});
      !r)
    return up(r);
  auto r = c.query(
      "INSERT INTO holds(id, payer_account, payee_account, payer_se, payee_se, currency, amount_minor,"
      " release_at, status, resolved_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'held', '', ?9)",
      {h.id, h.payer_account, h.payee_account, h.payer_se, h.payee_se, h.currency, h.amount_minor, h.release_at,
       h.created_at});
  if (!r) return up(r);
  return {};
}

Status close_hold(Conn& c, const std::string& id, const std::string& status, const std::string& by) {
  auto r = c.query("UPDATE holds SET status = ?1, resolved_by = ?2 WHERE id = ?3 AND status = 'held'", {status, by, id});
  if (!r) return up(r);
  if (r->changed() != 1) return fail(Errc::conflict, "hold " + id + " is not held", "hold_id");
  return {};
}

class SqlBankStore final : public BankStore {
 public:
  explicit SqlBankStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}

  Status add_admin_token(ByteView token_hash, const std::string& name) override {
    return store::add_admin_token(*db_, token_hash, name);
  }

  Result<bool> is_admin_token(ByteView token_hash) override { return store::is_admin_token(*db_, token_hash); }

  Result<AccountRecord> open_account(const AccountRecord& account) override {
    if (!ledger::is_customer_money(account.kind) || account.kind == ledger::AccountKind::hold)
      return fail(Errc::bad_field, "only customer and joint accounts are opened directly", "kind");
    std::optional<AccountRecord> existing;
    Status s = db_->transaction(Database::Mode::write, [&](Conn& c) -> Status {
      existing.reset();
      auto inserted = insert_account(c, account);
      if (!inserted) return up(inserted);
      if (!*inserted) {
        auto found = find_account_in(c, account.id);
        if (!found) return up(found);
        if (!*found) return fail(Errc::internal, "account " + account.id + " vanished");
        existing = std::move(**found);
        return {};
      }
      if (account.kind == ledger::AccountKind::joint)
        if (auto r = insert_joint(c, account); !r) return r;
      // The currency's system accounts come into being with its first account.
      for (auto [id, kind] : {std::pair{ledger::issuance_account_id(account.currency), ledger::AccountKind::issuance},
                              std::pair{ledger::outstanding_account_id(account.currency),
                                        ledger::AccountKind::ecash_outstanding}})
        if (auto r = insert_account(c, {id, kind, account.currency, "", std::nullopt, 0, account.created_at, {}, 0});
            !r)
          return up(r);
      return {};
    });
    if (!s) return std::unexpected(s.error());
    if (existing) {
      if (existing->kind != account.kind || existing->currency != account.currency ||
          existing->user_id != account.user_id || existing->se_id != account.se_id ||
          existing->co_managers != account.co_managers || existing->threshold != account.threshold)
        return fail(Errc::conflict, "account " + account.id + " exists with other settings", "account");
      return *existing;
    }
    AccountRecord out = account;
    out.balance_minor = 0;
    return out;
  }

  Result<std::optional<AccountRecord>> find_account(const std::string& id) override {
    return read<std::optional<AccountRecord>>([&](Conn& c) { return find_account_in(c, id); });
  }

  Result<std::vector<AccountRecord>> list_accounts() override {
    std::vector<AccountRecord> out;
    Status s = read([&](Conn& c) -> Status {
      out.clear();
      auto r = c.query(std::string(kAccountColumns) + " ORDER BY id");
      if (!r) return up(r);
      for (std::size_t i = 0; i < r->size(); ++i) {
        auto a = row_to_account(*r, i);
        if (!a) return up(a);
        if (auto j = load_joint(c, *a); !j) return j;
        out.push_back(std::move(*a));
      }
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return out;
  }

  Result<std::vector<HistoryItem>> history(const std::string& account_id, int limit) override {
    std::vector<HistoryItem> out;
    Status s = read([&](Conn& c) -> Status {
      auto r = c.query(
          "SELECT j.entry_id, j.doc_id, j.kind, p.amount_minor, j.created_at FROM postings p"
          " JOIN journal j ON j.entry_id = p.entry_id WHERE p.account_id = ?1"
          " ORDER BY p.entry_id DESC LIMIT ?2",
          {account_id, limit});
      if (!r) return up(r);
      out.clear();
      for (std::size_t i = 0; i < r->size(); ++i)
        out.push_back({r->integer(i, 0), r->text(i, 1), r->text(i, 2), r->integer(i, 3), r->integer(i, 4)});
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return out;
  }

  Result<std::vector<FeedItem>> feed(const std::string& account_id, std::int64_t after, int limit) override {
    std::vector<FeedItem> out;
    Status s = read([&](Conn& c) -> Status {
      auto r = c.query(
          "SELECT j.entry_id, j.doc_id, j.kind, f.amount_minor, j.created_at, COALESCE(d.response, ''), f.held_minor"
          " FROM (SELECT entry_id, amount_minor, 0 AS held_minor FROM postings WHERE account_id = ?1 AND entry_id > ?2"
          "       UNION ALL"
          "       SELECT entry_id, 0, held_minor FROM notices WHERE account_id = ?1 AND entry_id > ?2) f"
          " JOIN journal j ON j.entry_id = f.entry_id LEFT JOIN processed_documents d ON d.doc_id = j.doc_id"
          " ORDER BY f.entry_id LIMIT ?3",
          {account_id, after, limit});
      if (!r) return up(r);
      out.clear();
      for (std::size_t i = 0; i < r->size(); ++i)
        out.push_back({r->integer(i, 0), r->text(i, 1), r->text(i, 2), r->integer(i, 3), r->integer(i, 4),
                       r->text(i, 5), r->integer(i, 6)});
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return out;
  }

  Result<std::optional<ProcessedDocument>> find_processed(const std::string& doc_id) override {
    return read<std::optional<ProcessedDocument>>([&](Conn& c) { return find_processed_in(c, doc_id); });
  }

  Result<Applied> apply(const DocKey& doc, const ledger::JournalEntry& entry, const std::string& response,
                        std::int64_t now, const Effects& fx) override {
    Applied out;
    Status s = db_->transaction(Database::Mode::write, [&](Conn& c) -> Status {
      out = Applied{};
      // SAFETY-CRITICAL: the double-processing guard. The document id is claimed
      // with an insert-if-absent in the same transaction as the money movement
      // below, so a document moves money at most once even across crashes and
      // concurrent retries (a concurrent insert of the same id waits for this
      // transaction); if anything below fails, the claim rolls back with it.
      auto claim = c.query(
          "INSERT INTO processed_documents(doc_id, signer, doc_type, payload_digest, response, created_at)"
          " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(doc_id) DO NOTHING",
          {doc.doc_id, doc.signer, doc.doc_type, doc.payload_digest, response, now});
      if (!claim) return up(claim);
      if (claim->changed() == 0) {
        auto prior = find_processed_in(c, doc.doc_id);
        if (!prior) return up(prior);
        if (!*prior) return fail(Errc::internal, "processed document vanished");
        const DocKey& k = (*prior)->key;
        if (k.signer != doc.signer || k.doc_type != doc.doc_type || k.payload_digest != doc.payload_digest)
          return fail(Errc::doc_id_reused, "another document with id " + doc.doc_id + " was already processed", "id");
        out.response = (*prior)->response;
        out.replayed = true;
        return {};  // an idempotent retry: commit nothing new
      }

      // SAFETY-CRITICAL: the further guards (a hold ends once across confirm,
      // release and expiry) are taken in this same transaction, so two
      // documents racing for one key cannot both move money.
      for (const auto& g : fx.guards)
        if (auto t = take_guard(c, g, doc.doc_id); !t) return t;
      if (fx.open_hold)
        if (auto h = open_hold(c, *fx.open_hold); !h) return h;
      if (fx.close_hold)
        if (auto h = close_hold(c, fx.close_hold->first, fx.close_hold->second, doc.doc_id); !h) return h;
      // An entry without postings records a refusal: the document is consumed
      // (it can never move money later) and nothing else is written.
      if (entry.postings.empty()) {
        out.response = response;
        return {};
      }
      // The books' invariant is asserted before anything is written.
      if (auto ch = ledger::check_entry(entry); !ch) return ch;
      // The accounts are read locked, in id order (two entries on the same
      // accounts lock them in the same order and cannot deadlock), so the
      // balances written below are computed from the newest ones.
      std::vector<std::string> ids;
      for (const auto& p : entry.postings) ids.push_back(p.account_id);
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      std::vector<ledger::Account> touched;
      for (const auto& id : ids) {
        auto a = find_account_in(c, id, true);
        if (!a) return up(a);
        if (*a) touched.push_back({(*a)->id, (*a)->kind, (*a)->currency, (*a)->balance_minor});
      }
      auto next = ledger::apply_entry(entry, std::move(touched));
      if (!next) return up(next);

      auto j = c.query("INSERT INTO journal(doc_id, kind, created_at) VALUES (?1, ?2, ?3) RETURNING entry_id",
                       {entry.doc_id, entry.kind, now});
      if (!j) return up(j);
      if (j->empty()) return fail(Errc::internal, "no entry id returned");
      out.entry_id = j->integer(0, 0);
      for (const auto& p : entry.postings)
        if (auto r = c.query("INSERT INTO postings(entry_id, account_id, amount_minor) VALUES (?1, ?2, ?3)",
                             {out.entry_id, p.account_id, p.amount_minor});
            !r)
          return up(r);
      for (const auto& [account, held] : fx.notices)
        if (auto r = c.query("INSERT INTO notices(entry_id, account_id, held_minor) VALUES (?1, ?2, ?3)",
                             {out.entry_id, account, held});
            !r)
          return up(r);
      for (const auto& a : *next) {
        auto r = c.query("UPDATE accounts SET balance_minor = ?1 WHERE id = ?2", {a.balance_minor, a.id});
        if (!r) return up(r);
        if (r->changed() != 1) return fail(Errc::internal, "balance update missed " + a.id);
      }
      out.response = response;
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return out;
  }

  Result<std::optional<std::string>> guard_holder(const std::string& key) override {
    std::optional<std::string> out;
    Status s = read([&](Conn& c) -> Status {
      auto r = c.query("SELECT doc_id FROM guards WHERE key = ?1", {key});
      if (!r) return up(r);
      if (!r->empty()) out = r->text(0, 0);
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return out;
  }

  Status add_process_no(const ProcessNumber& n, std::int64_t now) override {
    return db_->transaction(Database::Mode::write, [&](Conn& c) -> Status {
      auto r = c.query("INSERT INTO process_numbers(number, se_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
                       {n.number, n.se_id, n.expires_at, now});
      if (!r) return up(r);
      return {};
    });
  }

  Result<std::optional<ProcessNumber>> find_process_no(const std::string& number) override {
    std::optional<ProcessNumber> out;
    Status s = read([&](Conn& c) -> Status {
      auto r = c.query("SELECT number, se_id, expires_at FROM process_numbers WHERE number = ?1", {number});
      if (!r) return up(r);
      if (!r->empty()) out = ProcessNumber{r->text(0, 0), r->text(0, 1), r->integer(0, 2)};
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return out;
  }

  Result<std::optional<HoldRecord>> find_hold(const std::string& id) override {
    return read<std::optional<HoldRecord>>([&](Conn& c) -> Result<std::optional<HoldRecord>> {
      auto r = c.query(std::string(kHoldColumns) + " WHERE id = ?1", {id});
      if (!r) return up(r);
      if (r->empty()) return std::nullopt;
      return row_to_hold(*r, 0);
    });
  }

  Result<std::vector<HoldRecord>> due_holds(std::int64_t now, int limit) override {
    return read<std::vector<HoldRecord>>([&](Conn& c) -> Result<std::vector<HoldRecord>> {
      auto r = c.query(std::string(kHoldColumns) +
                           " WHERE status = 'held' AND release_at <= ?1 ORDER BY release_at, id LIMIT ?2",
                       {now, limit});
      if (!r) return up(r);
      std::vector<HoldRecord> out;
      for (std::size_t i = 0; i < r->size(); ++i) out.push_back(row_to_hold(*r, i));
      return out;
    });
  }

  Result<bool> use_once(const std::string& signer, const std::string& doc_id, std::int64_t exp,
                        std::int64_t now) override {
    bool first = false;
    Status s = db_->transaction(Database::Mode::write, [&](Conn& c) -> Status {
      if (auto r = c.query("DELETE FROM used_queries WHERE exp < ?1", {now - kUseRetentionS}); !r) return up(r);
      auto r = c.query(
          "INSERT INTO used_queries(signer, doc_id, exp) VALUES (?1, ?2, ?3) ON CONFLICT(signer, doc_id) DO NOTHING",
          {signer, doc_id, exp});
      if (!r) return up(r);
      first = r->changed() == 1;
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return first;
  }

  Result<ledger::AuditReport> audit() override {
    std::optional<ledger::Auditor> auditor;
    // One snapshot: accounts, journal and holds as of one moment.
    Status s = read([&](Conn& c) -> Status {
      auditor.emplace();
      std::map<std::string, std::string> currency_of;
      auto accounts = c.query("SELECT id, kind, currency, balance_minor FROM accounts ORDER BY id");
      if (!accounts) return up(accounts);
      for (std::size_t i = 0; i < accounts->size(); ++i) {
        auto kind = ledger::kind_from_name(accounts->text(i, 1));
        if (!kind) return up(kind);
        ledger::Account a{accounts->text(i, 0), *kind, accounts->text(i, 2), accounts->integer(i, 3)};
        currency_of[a.id] = a.currency;
        auditor->add_account(a);
      }
      // Postings in entry order; entries without postings show up as empty entries.
      auto je = c.query(
          "SELECT j.entry_id, j.doc_id, j.kind, p.account_id, p.amount_minor FROM journal j"
          " LEFT JOIN postings p ON p.entry_id = j.entry_id ORDER BY j.entry_id, p.account_id");
      if (!je) return up(je);
      ledger::JournalEntry cur;
      bool have = false;
      for (std::size_t i = 0; i < je->size(); ++i) {
        std::int64_t id = je->integer(i, 0);
        if (!have || id != cur.entry_id) {
          if (have) auditor->add_entry(cur);
          cur = ledger::JournalEntry{id, je->text(i, 1), je->text(i, 2), {}};
          have = true;
        }
        if (!je->null(i, 3)) {
          const std::string& acc = je->text(i, 3);
          auto cur_of = currency_of.find(acc);
          cur.postings.push_back({acc, cur_of == currency_of.end() ? std::string("???") : cur_of->second,
                                  je->integer(i, 4)});
        }
      }
      if (have) auditor->add_entry(cur);
      auto holds = c.query("SELECT id, currency, amount_minor FROM holds WHERE status = 'held' ORDER BY id");
      if (!holds) return up(holds);
      for (std::size_t i = 0; i < holds->size(); ++i)
        auditor->add_open_hold(holds->text(i, 0), holds->text(i, 1), holds->integer(i, 2));
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return auditor->finish();
  }

 private:
  Status read(const std::function<Status(Conn&)>& body) { return db_->transaction(Database::Mode::snapshot, body); }
  template <class T, class F>
  Result<T> read(F&& body) {
    return db_->fetch<T>(Database::Mode::snapshot, std::forward<F>(body));
  }

  std::unique_ptr<Database> db_;
};

}  // namespace

Result<std::unique_ptr<BankStore>> open_store(const std::string& url) {
  auto db = Database::open(url, kSchema);
  if (!db) return std::unexpected(db.error());
  return std::unique_ptr<BankStore>(new SqlBankStore(std::move(*db)));
}

Result<std::unique_ptr<BankStore>> open_sqlite_store(const std::string& path) { return open_store("sqlite:" + path); }

}  // namespace zf::bank
