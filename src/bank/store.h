// The bank's storage behind one interface (STYLE.md §3): SQLite now, PostgreSQL
// later, one test suite for both. The store owns the exactly-once guarantee
// (DESIGN.md §7): every money movement is one transaction that records the
// document id, applies the journal entry and stores the response together.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "ledger/ledger.h"

namespace zf::bank {

// An account row.
struct AccountRecord {
  std::string id;
  ledger::AccountKind kind = ledger::AccountKind::customer;
  std::string currency;
  std::string user_id;               // owner (customer accounts); empty for system accounts
  std::optional<std::string> se_id;  // if set, only this SE may sign for the account
  std::int64_t balance_minor = 0;
  std::int64_t created_at = 0;
};

// One line of an account's history: the entry and this account's side of it.
struct HistoryItem {
  std::int64_t entry_id = 0;
  std::string doc_id;
  std::string kind;
  std::int64_t amount_minor = 0;  // signed: + credits the account, - debits it
  std::int64_t created_at = 0;
};

// What identifies a processed document: its id, who signed it, what it was and
// the SHA-256 of its payload bytes (never the signature: ECDSA is malleable).
struct DocKey {
  std::string doc_id;
  std::string signer;
  std::string doc_type;
  Bytes payload_digest;
};

// A processed document as stored, with the response that was returned for it.
struct ProcessedDocument {
  DocKey key;
  std::string response;
  std::int64_t created_at = 0;
};

// The outcome of apply(): the response to return and whether it was a retry.
struct Applied {
  std::string response;
  bool replayed = false;
  std::int64_t entry_id = 0;  // 0 for a replay
};

// How long past its `exp` a used query id is kept: a clock stepped back by less than
// this cannot make a forgotten query valid again.
inline constexpr std::int64_t kUseRetentionS = 600;

class BankStore {
 public:
  virtual ~BankStore() = default;

  // Records the SHA-256 of an admin token.
  virtual Status add_admin_token(ByteView token_hash, const std::string& name) = 0;
  // True if the hash belongs to an admin token.
  virtual Result<bool> is_admin_token(ByteView token_hash) = 0;

  // Creates a customer or joint account and, in the same transaction, the
  // currency's issuance and e-cash outstanding accounts if they do not exist.
  // The same request again returns the existing account; a different one with
  // the same id is a conflict.
  virtual Result<AccountRecord> open_account(const AccountRecord& account) = 0;
  // The account, or nullopt.
  virtual Result<std::optional<AccountRecord>> find_account(const std::string& id) = 0;
  virtual Result<std::vector<AccountRecord>> list_accounts() = 0;
  // The newest `limit` postings of an account, newest first.
  virtual Result<std::vector<HistoryItem>> history(const std::string& account_id, int limit) = 0;
  // The processed document with this id, or nullopt.
  virtual Result<std::optional<ProcessedDocument>> find_processed(const std::string& doc_id) = 0;

  // Exactly once, in ONE transaction:
  //   1. insert-if-absent the document key. If the id is present: same signer and
  //      payload digest -> return the stored response (replayed, nothing moves);
  //      otherwise doc_id_reused and nothing changes;
  //   2. check that the entry sums to zero, load the accounts it touches, apply
  //      it with ledger::apply_entry (insufficient_funds etc. roll everything back);
  //   3. write the journal entry, its postings, the new balances and `response`.
  // An entry with no postings records a refusal: step 1 only, nothing moves.
  virtual Result<Applied> apply(const DocKey& doc, const ledger::JournalEntry& entry,
                                const std::string& response, std::int64_t now) = 0;

  // SAFETY-CRITICAL: single use of an unsequenced document (account.query). In ONE
  // transaction: forgets uses whose `exp` is more than kUseRetentionS in the past
  // (the document is refused as expired by then anyway), then inserts (signer,
  // doc_id, exp) if absent. True for the first presentation, false for a replay.
  virtual Result<bool> use_once(const std::string& signer, const std::string& doc_id,
                                std::int64_t exp, std::int64_t now) = 0;

  // Recomputes the books from the stored journal (ledger::Auditor) in one snapshot.
  virtual Result<ledger::AuditReport> audit() = 0;
};

// Opens (creating) a SQLite bank database: WAL, synchronous=FULL.
Result<std::unique_ptr<BankStore>> open_sqlite_store(const std::string& path);

}  // namespace zf::bank
