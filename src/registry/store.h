// The registry's storage behind one interface (STYLE.md §3): one
// implementation (sql_store.cc) over store::Database, on SQLite or PostgreSQL,
// one test suite for both (tests/registry/store_test.cc).
// The store owns the exactly-once guarantee of DESIGN.md §7: claim() decides
// "first claim wins" inside one database transaction.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"

namespace zf::registry {

// One row of `records`: who claimed a document id, for which result, and the
// evidence (the processor's signed claim and the registry's signed record).
struct RecordRow {
  std::string doc_id;
  std::string doc_issuer;
  std::optional<std::int64_t> doc_seq;  // set for documents an SE signed
  std::string doc_type;
  std::string processor;
  Bytes result_digest;     // 32 bytes
  std::string claim_jws;   // the claim as received
  std::string record_jws;  // the signed record with status "claimed"
  std::int64_t claimed_at = 0;
};

// True when `claim` repeats the claim that stored `held`: the same processor,
// result digest, issuer, seq and type. Such a claim is an idempotent retry.
inline bool is_retry_of(const RecordRow& held, const RecordRow& claim) {
  return held.processor == claim.processor && held.result_digest == claim.result_digest &&
         held.doc_issuer == claim.doc_issuer && held.doc_seq == claim.doc_seq &&
         held.doc_type == claim.doc_type;
}

// True when `claim` names the same SE document (issuer, seq) as `held` but
// another document: for SE documents the result digest is the digest of the
// document's payload (docs/registry-api.md), so a different digest is a
// different document signed under a sequence number already spent.
inline bool is_seq_reuse(const RecordRow& held, const RecordRow& claim) {
  return held.doc_seq && claim.doc_seq == held.doc_seq && claim.doc_issuer == held.doc_issuer &&
         claim.result_digest != held.result_digest;
}

// A clone/rollback signal: (se_id, seq) was claimed for a second, different document.
struct Alert {
  std::int64_t id = 0;
  std::string se_id;  // the document issuer whose sequence number was reused
  std::int64_t seq = 0;
  std::string first_doc_id;     // the document that holds (se_id, seq)
  std::string first_processor;  // who claimed the first document
  std::string second_doc_id;    // the refused document
  std::string second_processor;
  std::string second_claim_jws;  // the refused claim, as evidence
  std::int64_t created_at = 0;
};

// How a claim ended.
enum class ClaimOutcome {
  claimed,            // this claim inserted the row: it won
  retry,              // the row exists with the same processor and facts: the stored record
  already_processed,  // the row exists for another processor or result
  seq_reused,         // (doc_issuer, doc_seq) is held by another document id; alert stored
};

// The outcome of claim(). `record` is the row that holds the document id (claimed,
// retry, already_processed) or the row that holds the (doc_issuer, doc_seq) pair
// (seq_reused); `alert` is set for seq_reused.
struct ClaimResult {
  ClaimOutcome outcome = ClaimOutcome::claimed;
  RecordRow record;
  std::optional<Alert> alert;
};

// Counts, for tests and operators.
struct RegistryStats {
  std::int64_t records = 0;
  std::int64_t alerts = 0;
};

class RegistryStore {
 public:
  virtual ~RegistryStore() = default;

  // Records the SHA-256 of an admin token.
  virtual Status add_admin_token(ByteView token_hash, const std::string& name) = 0;
  // True if the hash belongs to an admin token.
  virtual Result<bool> is_admin_token(ByteView token_hash) = 0;

  // Claims `row.doc_id` for `row.processor`, in ONE transaction:
  //   1. the id is present and names the same SE (issuer, seq) with another
  //      result digest (is_seq_reuse) -> seq_reused, as in 2;
  //      same processor, result digest, issuer, seq and type -> retry (the
  //      stored row, unchanged); otherwise -> already_processed (the stored
  //      row). Nothing is written.
  //   2. row.doc_seq is set and (doc_issuer, doc_seq) is held by another
  //      document -> seq_reused: an alert is stored (once per second document
  //      id and processor), the claim is not recorded.
  //   3. otherwise the row is inserted -> claimed.
  // `now` stamps an alert.
  virtual Result<ClaimResult> claim(const RecordRow& row, std::int64_t now) = 0;
  // The record of a document id, or nullopt.
  virtual Result<std::optional<RecordRow>> find(const std::string& doc_id) = 0;
  // Alerts with id > after_id, oldest first, at most `limit`.
  virtual Result<std::vector<Alert>> alerts(std::int64_t after_id, int limit) = 0;
  virtual Result<RegistryStats> stats() = 0;
};

// Opens (creating the schema of) the registry database at `url`:
// postgresql://…, or a SQLite file (WAL, synchronous=FULL) as sqlite:PATH or PATH.
Result<std::unique_ptr<RegistryStore>> open_store(const std::string& url);
// open_store for a SQLite file.
Result<std::unique_ptr<RegistryStore>> open_sqlite_store(const std::string& path);

}  // namespace zf::registry
