// RegistryStore over store::Database: "first claim wins", written once, on
// SQLite (registry.db) or PostgreSQL. Every claim is one write transaction.
#include "registry/store.h"
#include "store/sql.h"

namespace zf::registry {
namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS records (
  doc_id TEXT PRIMARY KEY,            -- first claim wins (DESIGN.md §7)
  doc_issuer TEXT NOT NULL,
  doc_seq BIGINT,                    -- the issuing SE's sequence number, if any
  doc_type TEXT NOT NULL,
  processor TEXT NOT NULL,
  result_digest {blob} NOT NULL,
  claim_jws TEXT NOT NULL,
  record_jws TEXT NOT NULL,
  claimed_at BIGINT NOT NULL
);
-- One document per (issuer, seq): a second one is a cloned or rolled-back SE.
CREATE UNIQUE INDEX IF NOT EXISTS records_by_issuer_seq ON records(doc_issuer, doc_seq)
  WHERE doc_seq IS NOT NULL;
CREATE TABLE IF NOT EXISTS alerts (
  id {id},
  se_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  first_doc_id TEXT NOT NULL,
  second_doc_id TEXT NOT NULL,
  second_processor TEXT NOT NULL,
  second_claim_jws TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE (se_id, seq, second_doc_id, second_processor)
);
CREATE TABLE IF NOT EXISTS admin_tokens (
  token_hash {blob} PRIMARY KEY,
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

using store::Conn;
using store::Database;
using store::Rows;

template <class T>
std::unexpected<Error> up(const Result<T>& r) {
  return std::unexpected(r.error());
}

RecordRow row_to_record(const Rows& rows, std::size_t i) {
  RecordRow r;
  r.doc_id = rows.text(i, 0);
  r.doc_issuer = rows.text(i, 1);
  if (!rows.null(i, 2)) r.doc_seq = rows.integer(i, 2);
  r.doc_type = rows.text(i, 3);
  r.processor = rows.text(i, 4);
  r.result_digest = rows.blob(i, 5);
  r.claim_jws = rows.text(i, 6);
  r.record_jws = rows.text(i, 7);
  r.claimed_at = rows.integer(i, 8);
  return r;
}

Alert row_to_alert(const Rows& r, std::size_t i) {
  return Alert{r.integer(i, 0), r.text(i, 1), r.integer(i, 2), r.text(i, 3), r.text(i, 4),
               r.text(i, 5),    r.text(i, 6), r.text(i, 7),    r.integer(i, 8)};
}

Result<std::optional<RecordRow>> find_in(Conn& c, const std::string& doc_id) {
  auto r = c.query("SELECT " + std::string(kRecordColumns) + " FROM records WHERE doc_id = ?1", {doc_id});
  if (!r) return up(r);
  if (r->empty()) return std::optional<RecordRow>{};
  return std::optional<RecordRow>(row_to_record(*r, 0));
}

Result<std::optional<RecordRow>> find_by_seq_in(Conn& c, const std::string& issuer, std::int64_t seq) {
  auto r = c.query("SELECT " + std::string(kRecordColumns) + " FROM records WHERE doc_issuer = ?1 AND doc_seq = ?2",
                   {issuer, seq});
  if (!r) return up(r);
  if (r->empty()) return std::optional<RecordRow>{};
  return std::optional<RecordRow>(row_to_record(*r, 0));
}

class SqlRegistryStore final : public RegistryStore {
 public:
  explicit SqlRegistryStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}

  Status add_admin_token(ByteView token_hash, const std::string& name) override {
    return store::add_admin_token(*db_, token_hash, name);
  }

  Result<bool> is_admin_token(ByteView token_hash) override { return store::is_admin_token(*db_, token_hash); }

  Result<ClaimResult> claim(const RecordRow& row, std::int64_t now) override {
    ClaimResult out;
    Status s = db_->transaction(Database::Mode::write, [&](Conn& c) -> Status {
      out = ClaimResult{};
      // SAFETY-CRITICAL: the registry's exactly-once guard. The claim is an
      // insert-if-absent against BOTH unique keys (doc_id, and (doc_issuer,
      // doc_seq) when a seq is given) as the first statement of a write
      // transaction. Whoever inserts the row has won the document id; every
      // other claim, concurrent (its insert waits for this one) or later, in
      // this process or another one, finds the row and loses. The reads below
      // only explain a lost insert.
      auto ins = c.query(
          "INSERT INTO records(doc_id, doc_issuer, doc_seq, doc_type, processor, result_digest,"
          " claim_jws, record_jws, claimed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
          " ON CONFLICT DO NOTHING",
          {row.doc_id, row.doc_issuer, row.doc_seq ? store::Param(*row.doc_seq) : store::Param(nullptr), row.doc_type,
           row.processor, row.result_digest, row.claim_jws, row.record_jws, row.claimed_at});
      if (!ins) return up(ins);
      if (ins->changed() == 1) {
        out.outcome = ClaimOutcome::claimed;
        out.record = row;
        return {};
      }

      // Lost: the id is taken (first), or the (issuer, seq) pair is.
      auto existing = find_in(c, row.doc_id);
      if (!existing) return up(existing);
      std::optional<RecordRow> holder;
      if (*existing) {
        if (!is_seq_reuse(**existing, row)) {
          out.outcome = is_retry_of(**existing, row) ? ClaimOutcome::retry : ClaimOutcome::already_processed;
          out.record = std::move(**existing);
          return {};
        }
        // The same SE document id, with another document behind it.
        holder = std::move(*existing);
      } else {
        if (!row.doc_seq) return fail(Errc::internal, "claim insert lost without a conflict");
        auto by_seq = find_by_seq_in(c, row.doc_issuer, *row.doc_seq);
        if (!by_seq) return up(by_seq);
        if (!*by_seq) return fail(Errc::internal, "claim insert lost without a conflict");
        holder = std::move(*by_seq);
      }
      // The alert is written in this same transaction: a refused clone is never unrecorded.
      if (auto r = c.query(
              "INSERT INTO alerts(se_id, seq, first_doc_id, second_doc_id, second_processor,"
              " second_claim_jws, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
              {row.doc_issuer, *row.doc_seq, holder->doc_id, row.doc_id, row.processor, row.claim_jws, now});
          !r)
        return up(r);
      auto found = c.query(std::string(kAlertSelect) +
                               " WHERE a.se_id = ?1 AND a.seq = ?2 AND a.second_doc_id = ?3"
                               " AND a.second_processor = ?4",
                           {row.doc_issuer, *row.doc_seq, row.doc_id, row.processor});
      if (!found) return up(found);
      if (found->empty()) return fail(Errc::internal, "alert vanished");
      out.outcome = ClaimOutcome::seq_reused;
      out.alert = row_to_alert(*found, 0);
      out.record = std::move(*holder);
      return {};
    });
    if (!s) return std::unexpected(s.error());
    return out;
  }

  Result<std::optional<RecordRow>> find(const std::string& doc_id) override {
    return read<std::optional<RecordRow>>([&](Conn& c) { return find_in(c, doc_id); });
  }

  Result<std::vector<Alert>> alerts(std::int64_t after_id, int limit) override {
    return read<std::vector<Alert>>([&](Conn& c) -> Result<std::vector<Alert>> {
      auto r = c.query(std::string(kAlertSelect) + " WHERE a.id > ?1 ORDER BY a.id LIMIT ?2", {after_id, limit});
      if (!r) return up(r);
      std::vector<Alert> out;
      for (std::size_t i = 0; i < r->size(); ++i) out.push_back(row_to_alert(*r, i));
      return out;
    });
  }

  Result<RegistryStats> stats() override {
    return read<RegistryStats>([&](Conn& c) -> Result<RegistryStats> {
      auto r = c.query("SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM alerts)");
      if (!r) return up(r);
      if (r->empty()) return fail(Errc::internal, "no counts");
      return RegistryStats{r->integer(0, 0), r->integer(0, 1)};
    });
  }

 private:
  template <class T, class F>
  Result<T> read(F&& body) {
    return db_->fetch<T>(Database::Mode::snapshot, std::forward<F>(body));
  }

  std::unique_ptr<Database> db_;
};

}  // namespace

Result<std::unique_ptr<RegistryStore>> open_store(const std::string& url) {
  auto db = Database::open(url, kSchema);
  if (!db) return std::unexpected(db.error());
  return std::unique_ptr<RegistryStore>(new SqlRegistryStore(std::move(*db)));
}

Result<std::unique_ptr<RegistryStore>> open_sqlite_store(const std::string& path) {
  return open_store("sqlite:" + path);
}

}  // namespace zf::registry
