// The bank's storage behind one interface (STYLE.md §3): one implementation
// (sql_store.cc) over store::Database, on SQLite or PostgreSQL, one test suite
// for both. The store owns the exactly-once guarantee (DESIGN.md §7): every
// money movement is one transaction that records the document id, applies the
// journal entry and stores the response together.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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
  // A joint account (kind joint, DESIGN.md §6.9): the SEs that manage it and
  // how many distinct ones must sign a joint.spend (1..co_managers.size()).
  // Nothing else spends from it.
  std::vector<std::string> co_managers;
  int threshold = 0;
};

// One line of an account's history: the entry and this account's side of it.
struct HistoryItem {
  std::int64_t entry_id = 0;
  std::string doc_id;
  std::string kind;
  std::int64_t amount_minor = 0;  // signed: + credits the account, - debits it
  std::int64_t created_at = 0;
};

// One event of an account's feed (the patent's S38/S67: payer and payee are
// told the result): a posting on the account, in journal order, with the
// signed receipt of the document that caused it.
struct FeedItem {
  std::int64_t entry_id = 0;
  std::string doc_id;
  std::string kind;
  std::int64_t amount_minor = 0;  // signed: + credits the account
  std::int64_t created_at = 0;
  std::string receipt;            // the bank's answer to doc_id (a signed receipt for documents)
  // A notice rather than a posting (amount_minor 0): the amount of a hold
  // placed for this account, or of one of its holds that ended without its
  // money moving (confirmed to the payee, or given back to the payer).
  std::int64_t held_minor = 0;
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

// A controlled transfer as the bank keeps it (DESIGN.md §6.8). Its money is in
// the currency's hold account from `held` until it ends, once: `confirmed` (to
// the payee), `released` (back to the payer, by the payee) or `expired` (back
// to the payer, by the bank at release_at).
struct HoldRecord {
  std::string id;  // the hold.request's id
  std::string payer_account;
  std::string payee_account;
  std::string payer_se;
  std::string payee_se;
  std::string currency;
  std::int64_t amount_minor = 0;
  std::int64_t release_at = 0;
  std::string status;       // held, confirmed, released, expired
  std::string resolved_by;  // the id of the document (or expiry) that ended it; empty while held
  std::int64_t created_at = 0;
};

// The guard key that confirm, release and expiry of one hold all take: whichever
// commits first ends the hold, the others find the key taken.
inline std::string hold_guard(std::string_view hold_id) { return "hold:" + std::string(hold_id); }

// A further exactly-once key, and the error when another document holds it.
struct Guard {
  std::string key;
  Errc taken = Errc::conflict;
};

// A designated processing number (DESIGN.md §6.10): handed to one SE, usable
// by one of its documents until it expires.
struct ProcessNumber {
  std::string number;
  std::string se_id;
  std::int64_t expires_at = 0;
};
// The guard key a document carrying `number` takes.
inline std::string process_no_guard(std::string_view number) { return "pn:" + std::string(number); }

// What apply() writes besides the document key and the journal entry, in the same transaction.
struct Effects {
  // Further exactly-once keys, each inserted if absent for this document. One
  // already taken by another document refuses the whole transaction with its
  // `taken` code, field = the key, evidence = the id of the document holding it.
  std::vector<Guard> guards;
  std::optional<HoldRecord> open_hold;  // a hold placed (status held)
  // A hold ended: its id and final status; it must be held, else conflict.
  std::optional<std::pair<std::string, std::string>> close_hold;
  // Accounts told of the entry though none of their money moves, each with
  // the amount held (FeedItem::held_minor): a hold's payee when it is placed
  // or given back, its payer when it is confirmed.
  std::vector<std::pair<std::string, std::int64_t>> notices;
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
  // Up to `limit` feed items (postings and notices) of an account with
  // entry_id > `after`, oldest first.
  virtual Result<std::vector<FeedItem>> feed(const std::string& account_id, std::int64_t after, int limit) = 0;
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
  //   4. take every guard key of `fx` and write its hold changes (see Effects).
  virtual Result<Applied> apply(const DocKey& doc, const ledger::JournalEntry& entry,
                                const std::string& response, std::int64_t now,
                                const Effects& fx = {}) = 0;

  // The document holding guard `key`, or nullopt.
  virtual Result<std::optional<std::string>> guard_holder(const std::string& key) = 0;
  // Records a processing number handed out (a conflict if it exists).
  virtual Status add_process_no(const ProcessNumber& n, std::int64_t now) = 0;
  virtual Result<std::optional<ProcessNumber>> find_process_no(const std::string& number) = 0;

  // The hold, or nullopt.
  virtual Result<std::optional<HoldRecord>> find_hold(const std::string& id) = 0;
  // Up to `limit` holds still held whose release_at <= now, soonest first.
  virtual Result<std::vector<HoldRecord>> due_holds(std::int64_t now, int limit) = 0;

  // SAFETY-CRITICAL: single use of an unsequenced document (account.query). In ONE
  // transaction: forgets uses whose `exp` is more than kUseRetentionS in the past
  // (the document is refused as expired by then anyway), then inserts (signer,
  // doc_id, exp) if absent. True for the first presentation, false for a replay.
  virtual Result<bool> use_once(const std::string& signer, const std::string& doc_id,
                                std::int64_t exp, std::int64_t now) = 0;

  // Recomputes the books from the stored journal (ledger::Auditor) in one snapshot.
  virtual Result<ledger::AuditReport> audit() = 0;
};

// Opens (creating the schema of) the bank database at `url`: postgresql://…,
// or a SQLite file (WAL, synchronous=FULL) as sqlite:PATH or PATH.
Result<std::unique_ptr<BankStore>> open_store(const std::string& url);
// open_store for a SQLite file.
Result<std::unique_ptr<BankStore>> open_sqlite_store(const std::string& path);

}  // namespace zf::bank
