// RegistryStore over one SQLite file (registry.db). One connection, one writer
// at a time; every claim is one BEGIN IMMEDIATE transaction.
#include <mutex>

#include "registry/store.h"
#include "store/sqlite.h"

namespace zf::registry {
namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS records (
  doc_id TEXT PRIMARY KEY,            -- first claim wins (DESIGN.md §7)
  doc_issuer TEXT NOT NULL,
  doc_seq INTEGER,                    -- the issuing SE's sequence number, if any
  doc_type TEXT NOT NULL,
  processor TEXT NOT NULL,
  result_digest BLOB NOT NULL,
  claim_jws TEXT NOT NULL,
  record_jws TEXT NOT NULL,
  claimed_at INTEGER NOT NULL
);
-- One document per (issuer, seq): a second one is a cloned or rolled-back SE.
CREATE UNIQUE INDEX IF NOT EXISTS records_by_issuer_seq ON records(doc_issuer, doc_seq)
  WHERE doc_seq IS NOT NULL;
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  se_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  first_doc_id TEXT NOT NULL,
  second_doc_id TEXT NOT NULL,
  second_processor TEXT NOT NULL,
  second_claim_jws TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (se_id, seq, second_doc_id, second_processor)
);
CREATE TABLE IF NOT EXISTS admin_tokens (
  token_hash BLOB PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
)sql";

constexpr std::string_view kRecordColumns =
    "doc_id, doc_issuer, doc_seq, doc_type, processor, result_digest, claim_jws, record_jws, "
    "claimed_at";

constexpr std::string_view kAlertSelect =
    "SELECT a.id, a.se_id, a.seq, a.first_doc_id, COALESCE(r.processor, ''), a.second_doc_id,"
    " a.second_processor, a.second_claim_jws, a.created_at FROM alerts a"
    " LEFT JOIN records r ON r.doc_id = a.first_doc_id";

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

RecordRow row_to_record(const store::Stmt& st) {
  RecordRow r;
  r.doc_id = st.col_text(0);
  r.doc_issuer = st.col_text(1);
  if (!st.col_null(2)) r.doc_seq = st.col_int(2);
  r.doc_type = st.col_text(3);
  r.processor = st.col_text(4);
  r.result_digest = st.col_blob(5);
  r.claim_jws = st.col_text(6);
  r.record_jws = st.col_text(7);
  r.claimed_at = st.col_int(8);
  return r;
}

Alert row_to_alert(const store::Stmt& st) {
  return Alert{st.col_int(0),  st.col_text(1), st.col_int(2),  st.col_text(3), st.col_text(4),
               st.col_text(5), st.col_text(6), st.col_text(7), st.col_int(8)};
}

class SqliteRegistryStore final : public RegistryStore {
 public:
  explicit SqliteRegistryStore(std::unique_ptr<store::Db> db) : db_(std::move(db)) {}

  Status add_admin_token(ByteView token_hash, const std::string& name) override {
    std::lock_guard lock(mu_);
    return store::add_admin_token(*db_, token_hash, name);
  }

  Result<bool> is_admin_token(ByteView token_hash) override {
    std::lock_guard lock(mu_);
    return store::is_admin_token(*db_, token_hash);
  }

  Result<ClaimResult> claim(const RecordRow& row, std::int64_t now) override {
    std::lock_guard lock(mu_);
    ClaimResult out;
    Status s = db_->transaction([&]() -> Status {
      // SAFETY-CRITICAL: the registry's exactly-once guard. The claim is an
      // insert-if-absent against BOTH unique keys (doc_id, and (doc_issuer,
      // doc_seq) when a seq is given) as the first statement of a write
      // transaction. Whoever inserts the row has won the document id; every
      // other claim, concurrent or later, in this process or another one, finds
      // the row and loses. The reads below only explain a lost insert.
      auto ins = db_->prepare(
          "INSERT INTO records(doc_id, doc_issuer, doc_seq, doc_type, processor, result_digest,"
          " claim_jws, record_jws, claimed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
          " ON CONFLICT DO NOTHING");
      if (!ins) return up(ins);
      ins->bind(1, row.doc_id)
          .bind(2, row.doc_issuer)
          .bind(4, row.doc_type)
          .bind(5, row.processor)
          .bind(6, ByteView(row.result_digest))
          .bind(7, row.claim_jws)
          .bind(8, row.record_jws)
          .bind(9, row.claimed_at);
      if (row.doc_seq)
        ins->bind(3, *row.doc_seq);
      else
        ins->bind_null(3);
      if (auto r = ins->run(); !r) return r;
      if (db_->changes() == 1) {
        out.outcome = ClaimOutcome::claimed;
        out.record = row;
        return {};
      }

      // Lost: the id is taken (first), or the (issuer, seq) pair is.
      auto existing = find_locked(row.doc_id);
      if (!existing) return up(existing);
      std::optional<RecordRow> holder;
      if (*existing) {
        if (!is_seq_reuse(**existing, row)) {
          out.outcome =
              is_retry_of(**existing, row) ? ClaimOutcome::retry : ClaimOutcome::already_processed;
          out.record = std::move(**existing);
          return {};
        }
        // The same SE document id, with another document behind it.
        holder = std::move(*existing);
      } else {
        if (!row.doc_seq) return fail(Errc::internal, "claim insert lost without a conflict");
        auto by_seq = find_by_seq_locked(row.doc_issuer, *row.doc_seq);
        if (!by_seq) return up(by_seq);
        if (!*by_seq) return fail(Errc::internal, "claim insert lost without a conflict");
        holder = std::move(*by_seq);
      }
      // The alert is written in this same transaction: a refused clone is never unrecorded.
      auto al = db_->prepare(
          "INSERT INTO alerts(se_id, seq, first_doc_id, second_doc_id, second_processor,"
          " second_claim_jws, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
          " ON CONFLICT DO NOTHING");
      if (!al) return up(al);
      if (auto r = al->bind(1, row.doc_issuer)
                       .bind(2, *row.doc_seq)
                       .bind(3, holder->doc_id)
                       .bind(4, row.doc_id)
                       .bind(5, row.processor)
                       .bind(6, row.claim_jws)
                       .bind(7, now)
                       .run();
          !r)
        return r;
      auto get = db_->prepare(std::string(kAlertSelect) +
                              " WHERE a.se_id = ?1 AND a.seq = ?2 AND a.second_doc_id = ?3"
                              " AND a.second_processor = ?4");
      if (!get) return up(get);
      auto found = get->bind(1, row.doc_issuer)
                       .bind(2, *row.doc_seq)
                       .bind(3, row.doc_id)
                       .bind(4, row.processor)
                       .step();
      if (!found) return up(found);
      if (!*found) return fail(Errc::internal, "alert vanished");
      out.outcome = ClaimOutcome::seq_reused;
      out.alert = row_to_alert(*get);
      out.record = std::move(*holder);
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return out;
  }

  Result<std::optional<RecordRow>> find(const std::string& doc_id) override {
    std::lock_guard lock(mu_);
    return find_locked(doc_id);
  }

  Result<std::vector<Alert>> alerts(std::int64_t after_id, int limit) override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare(std::string(kAlertSelect) + " WHERE a.id > ?1 ORDER BY a.id LIMIT ?2");
    if (!st) return up(st);
    st->bind(1, after_id).bind(2, std::int64_t{limit});
    std::vector<Alert> out;
    for (;;) {
      auto row = st->step();
      if (!row) return up(row);
      if (!*row) break;
      out.push_back(row_to_alert(*st));
    }
    return out;
  }

  Result<RegistryStats> stats() override {
    std::lock_guard lock(mu_);
    auto st = db_->prepare("SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM alerts)");
    if (!st) return up(st);
    auto row = st->step();
    if (!row) return up(row);
    if (!*row) return fail(Errc::internal, "no counts");
    return RegistryStats{st->col_int(0), st->col_int(1)};
  }

 private:
  Result<std::optional<RecordRow>> find_locked(const std::string& doc_id) {
    auto st =
        db_->prepare("SELECT " + std::string(kRecordColumns) + " FROM records WHERE doc_id = ?1");
    if (!st) return up(st);
    auto row = st->bind(1, doc_id).step();
    if (!row) return up(row);
    if (!*row) return std::optional<RecordRow>{};
    return std::optional<RecordRow>(row_to_record(*st));
  }

  Result<std::optional<RecordRow>> find_by_seq_locked(const std::string& issuer, std::int64_t seq) {
    auto st = db_->prepare("SELECT " + std::string(kRecordColumns) +
                           " FROM records WHERE doc_issuer = ?1 AND doc_seq = ?2");
    if (!st) return up(st);
    auto row = st->bind(1, issuer).bind(2, seq).step();
    if (!row) return up(row);
    if (!*row) return std::optional<RecordRow>{};
    return std::optional<RecordRow>(row_to_record(*st));
  }

  std::mutex mu_;  // one connection: one statement sequence at a time
  std::unique_ptr<store::Db> db_;
};

}  // namespace

Result<std::unique_ptr<RegistryStore>> open_sqlite_store(const std::string& path) {
  auto db = store::Db::open(path);
  if (!db) return std::unexpected(db.error());
  if (auto s = (*db)->exec(kSchema); !s) return std::unexpected(s.error());
  return std::unique_ptr<RegistryStore>(new SqliteRegistryStore(std::move(*db)));
}

}  // namespace zf::registry
