// The bank's double-entry ledger (DESIGN.md §3): account kinds, journal entries
// whose postings sum to zero, the rules that build entries for each operation,
// and an audit that recomputes conservation. Pure functions; no I/O.
//
// Sign convention: an account's balance is the sum of its postings, so the
// balances of all accounts of one currency sum to zero. Money enters through the
// issuance account (whose balance is minus the money issued), so per currency
//   customer + joint + hold + e-cash outstanding + settlement = issued
//                                                             = -(issuance balance).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/amount.h"
#include "core/error.h"

namespace zf::ledger {

// What an account holds (DESIGN.md §3).
enum class AccountKind {
  customer,           // a person's account
  joint,              // an account with several co-managers (§6.9)
  hold,               // frozen funds (§6.8)
  ecash_outstanding,  // the bank's liability for e-cash it put into SEs
  issuance,           // where money enters the system (cash-in); balance = -issued
  settlement,         // positions against other banks (§6.11)
};

// The stable name of a kind ("ecash_outstanding"), as stored and shown.
std::string_view kind_name(AccountKind kind);
// Parses a kind name; bad_field if unknown.
Result<AccountKind> kind_from_name(std::string_view name);
// Customer money (customer, joint, hold): such a balance never goes below zero.
bool is_customer_money(AccountKind kind);

// The system accounts, one per currency. Ids starting with "sys:" are reserved.
std::string issuance_account_id(std::string_view currency);
std::string outstanding_account_id(std::string_view currency);
// Where held money waits (§6.8): one hold account per currency, each open hold's
// amount in it until the hold is confirmed, released or expires.
std::string hold_account_id(std::string_view currency);
bool is_reserved_account_id(std::string_view id);
// A customer account id: 1..128 of [A-Za-z0-9._:-] (a document id), not reserved.
Status check_account_id(std::string_view id);

// An account as the rules see it.
struct Account {
  std::string id;
  AccountKind kind = AccountKind::customer;
  std::string currency;
  std::int64_t balance_minor = 0;
};

// One leg of an entry: a signed amount on one account, in that account's currency.
struct Posting {
  std::string account_id;
  std::string currency;
  std::int64_t amount_minor = 0;
};

// One movement of money, caused by one document (or admin reference).
struct JournalEntry {
  std::int64_t entry_id = 0;  // assigned by the store; 0 before it is recorded
  std::string doc_id;
  std::string kind;  // kEntryCashIn, kEntryTopup, kEntryDeposit, ...
  std::vector<Posting> postings;
};

inline constexpr std::string_view kEntryCashIn = "cash_in";
inline constexpr std::string_view kEntryTopup = "topup";
inline constexpr std::string_view kEntryDeposit = "deposit";
inline constexpr std::string_view kEntryTransfer = "transfer";
inline constexpr std::string_view kEntryHold = "hold";                 // payer -> hold account
inline constexpr std::string_view kEntryHoldConfirm = "hold_confirm";  // hold account -> payee
inline constexpr std::string_view kEntryHoldRelease = "hold_release";  // hold account -> payer
inline constexpr std::string_view kEntryHoldExpiry = "hold_expiry";    // hold account -> payer

// The books' central invariant: at least two postings, each non-zero, within
// ±Amount::kMaxMinor, in a known currency, on distinct accounts, and summing to
// zero per currency. Errc::internal names the imbalance: a violation is a bug.
Status check_entry(const JournalEntry& entry);

// cash-in: issuance -amount / customer +amount (money enters the bank).
Result<JournalEntry> cash_in(std::string doc_id, std::string customer_account,
                             const Amount& amount);
// top-up: customer -amount / e-cash outstanding +amount (money goes into an SE).
Result<JournalEntry> topup(std::string doc_id, std::string customer_account, const Amount& amount);
// deposit: e-cash outstanding -amount / customer +amount (e-cash comes back).
Result<JournalEntry> deposit(std::string doc_id, std::string customer_account,
                             const Amount& amount);
// transfer: from -amount / to +amount, both customer money (§6.7).
Result<JournalEntry> transfer(std::string doc_id, std::string from_account, std::string to_account,
                              const Amount& amount);

// hold: payer -amount / hold account +amount (the money is frozen, §6.8).
Result<JournalEntry> hold(std::string doc_id, std::string payer_account, const Amount& amount);
// The end of a hold (kind kEntryHoldConfirm, kEntryHoldRelease or
// kEntryHoldExpiry): hold account -amount / `to` +amount.
Result<JournalEntry> unhold(std::string doc_id, std::string_view kind, std::string to_account,
                            const Amount& amount);

// Applies a checked entry to the accounts it touches and returns them with their
// new balances. Refuses: an unknown account (account_unknown), a posting in
// another currency than its account (currency_mismatch), customer money going
// below zero (insufficient_funds), any balance beyond ±kMaxMinor (amount_overflow).
Result<std::vector<Account>> apply_entry(const JournalEntry& entry, std::vector<Account> touched);

// Conservation figures of one currency (balances, in minor units).
struct CurrencyFigures {
  std::string currency;
  std::int64_t customer_minor = 0;
  std::int64_t joint_minor = 0;
  std::int64_t hold_minor = 0;
  std::int64_t ecash_outstanding_minor = 0;
  std::int64_t settlement_minor = 0;
  std::int64_t issued_minor = 0;  // -(issuance balance)
  // customer + joint + hold + outstanding + settlement == issued.
  bool conserved = false;
};

// What an audit found. ok() when there is no violation.
struct AuditReport {
  std::size_t accounts = 0;
  std::size_t entries = 0;
  std::vector<CurrencyFigures> currencies;  // sorted by currency code
  std::vector<std::string> violations;      // human-readable, one per finding
  bool ok() const { return violations.empty(); }
};

// Recomputes the books from accounts and the journal, streaming: add every
// account, then every entry (with postings), then finish(). Checks that every
// entry is balanced and names existing accounts of its currency, that every
// balance equals the sum of its postings, that customer money and e-cash
// outstanding are not negative, and conservation per currency.
class Auditor {
 public:
  void add_account(const Account& account);
  void add_entry(const JournalEntry& entry);
  // A hold still open, in the books' snapshot: each currency's hold accounts
  // must hold exactly the sum of its open holds.
  void add_open_hold(const std::string& hold_id, const std::string& currency, std::int64_t amount_minor);
  AuditReport finish();

 private:
  struct Tally {
    Account account;
    __int128 posted = 0;
  };
  std::map<std::string, Tally> accounts_;
  std::map<std::string, __int128> open_holds_;  // currency -> sum of open holds
  std::size_t entries_ = 0;
  std::vector<std::string> violations_;
};

// Convenience over Auditor for a complete in-memory set.
AuditReport audit(const std::vector<Account>& accounts, const std::vector<JournalEntry>& journal);

}  // namespace zf::ledger
