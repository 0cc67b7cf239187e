#include "ledger/ledger.h"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

namespace zf::ledger {
namespace {

constexpr std::string_view kReservedPrefix = "sys:";

struct KindRow {
  AccountKind kind;
  std::string_view name;
};
constexpr std::array kKinds = {
    KindRow{AccountKind::customer, "customer"},
    KindRow{AccountKind::joint, "joint"},
    KindRow{AccountKind::hold, "hold"},
    KindRow{AccountKind::ecash_outstanding, "ecash_outstanding"},
    KindRow{AccountKind::issuance, "issuance"},
    KindRow{AccountKind::settlement, "settlement"},
};

std::string to_text(__int128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  unsigned __int128 u =
      neg ? static_cast<unsigned __int128>(-(v + 1)) + 1 : static_cast<unsigned __int128>(v);
  std::string out;
  while (u != 0) {
    out.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  if (neg) out.push_back('-');
  std::reverse(out.begin(), out.end());
  return out;
}

// Sums are bounded by the number of accounts times kMaxMinor; clamp for display.
std::int64_t clamp64(__int128 v) {
  if (v > INT64_MAX) return INT64_MAX;
  if (v < INT64_MIN) return INT64_MIN;
  return static_cast<std::int64_t>(v);
}

Result<JournalEntry> two_legs(std::string doc_id, std::string_view kind, std::string debit,
                              std::string credit, const Amount& amount) {
  if (amount.is_zero()) return fail(Errc::amount_zero, "amount must be positive", "amount");
  std::string cur(amount.currency().code());
  JournalEntry e;
  e.doc_id = std::move(doc_id);
  e.kind = std::string(kind);
  e.postings = {{std::move(debit), cur, -amount.minor()}, {std::move(credit), cur, amount.minor()}};
  if (auto s = check_entry(e); !s) return std::unexpected(s.error());
  return e;
}

}  // namespace

std::string_view kind_name(AccountKind kind) {
  for (const auto& row : kKinds)
    if (row.kind == kind) return row.name;
  return "unknown";
}

Result<AccountKind> kind_from_name(std::string_view name) {
  for (const auto& row : kKinds)
    if (row.name == name) return row.kind;
  return fail(Errc::bad_field, "unknown account kind '" + std::string(name.substr(0, 32)) + "'",
              "kind");
}

bool is_customer_money(AccountKind kind) {
  return kind == AccountKind::customer || kind == AccountKind::joint || kind == AccountKind::hold;
}

std::string issuance_account_id(std::string_view currency) {
  return std::string(kReservedPrefix) + "issuance:" + std::string(currency);
}

std::string outstanding_account_id(std::string_view currency) {
  return std::string(kReservedPrefix) + "ecash_outstanding:" + std::string(currency);
}

std::string hold_account_id(std::string_view currency) {
  return std::string(kReservedPrefix) + "hold:" + std::string(currency);
}

bool is_reserved_account_id(std::string_view id) { return id.starts_with(kReservedPrefix); }

Status check_account_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return fail(Errc::bad_field, "must be 1..128 characters", "account");
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return fail(Errc::bad_field, "must be of [A-Za-z0-9._:-]", "account");
  }
  if (is_reserved_account_id(id))
    return fail(Errc::bad_field, "ids starting with 'sys:' are reserved", "account");
  return {};
}

Status check_entry(const JournalEntry& entry) {
  const std::string what = "journal entry for '" + entry.doc_id + "'";
  if (entry.postings.size() < 2)
    return fail(Errc::internal, what + " needs at least two postings", "postings");
  std::map<std::string, __int128> sums;
  std::set<std::string> seen;
  for (const auto& p : entry.postings) {
    if (p.amount_minor == 0) return fail(Errc::internal, what + " has a zero posting", "postings");
    if (p.amount_minor > Amount::kMaxMinor || p.amount_minor < -Amount::kMaxMinor)
      return fail(Errc::internal, what + " has a posting beyond the maximum amount", "postings");
    if (!Currency::parse(p.currency))
      return fail(Errc::internal, what + " has an unknown currency", "postings");
    if (p.account_id.empty()) return fail(Errc::internal, what + " names no account", "postings");
    if (!seen.insert(p.account_id).second)
      return fail(Errc::internal, what + " posts twice to " + p.account_id, "postings");
    sums[p.currency] += p.amount_minor;
  }
  for (const auto& [currency, sum] : sums)
    if (sum != 0)
      return fail(Errc::internal,
                  what + " does not sum to zero in " + currency + " (" + to_text(sum) + ")",
                  "postings");
  return {};
}

Result<JournalEntry> cash_in(std::string doc_id, std::string customer_account,
                             const Amount& amount) {
  return two_legs(std::move(doc_id), kEntryCashIn, issuance_account_id(amount.currency().code()),
                  std::move(customer_account), amount);
}

Result<JournalEntry> topup(std::string doc_id, std::string customer_account, const Amount& amount) {
  return two_legs(std::move(doc_id), kEntryTopup, std::move(customer_account),
                  outstanding_account_id(amount.currency().code()), amount);
}

Result<JournalEntry> deposit(std::string doc_id, std::string customer_account,
                             const Amount& amount) {
  return two_legs(std::move(doc_id), kEntryDeposit,
                  outstanding_account_id(amount.currency().code()), std::move(customer_account),
                  amount);
}

Result<JournalEntry> transfer(std::string doc_id, std::string from_account, std::string to_account,
                              const Amount& amount) {
  if (from_account == to_account)
    return fail(Errc::same_account, "a transfer needs two different accounts", "to");
  return two_legs(std::move(doc_id), kEntryTransfer, std::move(from_account), std::move(to_account), amount);
}

Result<JournalEntry> hold(std::string doc_id, std::string payer_account, const Amount& amount) {
  return two_legs(std::move(doc_id), kEntryHold, std::move(payer_account),
                  hold_account_id(amount.currency().code()), amount);
}

Result<JournalEntry> unhold(std::string doc_id, std::string_view kind, std::string to_account,
                            const Amount& amount) {
  if (kind != kEntryHoldConfirm && kind != kEntryHoldRelease && kind != kEntryHoldExpiry)
    return fail(Errc::internal, "not a way a hold ends: " + std::string(kind), "kind");
  return two_legs(std::move(doc_id), kind, hold_account_id(amount.currency().code()),
                  std::move(to_account), amount);
}

Result<std::vector<Account>> apply_entry(const JournalEntry& entry, std::vector<Account> touched) {
  if (auto s = check_entry(entry); !s) return std::unexpected(s.error());
  std::vector<Account> out;
  out.reserve(entry.postings.size());
  for (const auto& p : entry.postings) {
    auto it = std::find_if(touched.begin(), touched.end(),
                           [&](const Account& a) { return a.id == p.account_id; });
    if (it == touched.end())
      return fail(Errc::account_unknown, "no account " + p.account_id, "account");
    if (it->currency != p.currency)
      return fail(Errc::currency_mismatch, "account " + p.account_id + " is in " + it->currency,
                  "currency");
    // Both operands are within ±kMaxMinor, so the sum cannot overflow int64.
    std::int64_t next = it->balance_minor + p.amount_minor;
    if (next > Amount::kMaxMinor || next < -Amount::kMaxMinor)
      return fail(Errc::amount_overflow, "balance of " + p.account_id + " would exceed the maximum",
                  "amount");
    if (next < 0 && is_customer_money(it->kind))
      return fail(Errc::insufficient_funds, "account " + p.account_id + " cannot cover the amount",
                  "amount");
    Account a = *it;
    a.balance_minor = next;
    out.push_back(std::move(a));
  }
  return out;
}

void Auditor::add_account(const Account& account) {
  if (!accounts_.emplace(account.id, Tally{account, 0}).second)
    violations_.push_back("account " + account.id + " listed twice");
}

void Auditor::add_entry(const JournalEntry& entry) {
  ++entries_;
  std::string name = "entry " + std::to_string(entry.entry_id) + " (" + entry.doc_id + ")";
  if (auto s = check_entry(entry); !s) violations_.push_back(name + ": " + s.error().detail);
  for (const auto& p : entry.postings) {
    auto it = accounts_.find(p.account_id);
    if (it == accounts_.end()) {
      violations_.push_back(name + ": posting to unknown account " + p.account_id);
      continue;
    }
    if (it->second.account.currency != p.currency)
      violations_.push_back(name + ": posting in " + p.currency + " to " + p.account_id +
                            " kept in " + it->second.account.currency);
    it->second.posted += p.amount_minor;
  }
}

void Auditor::add_open_hold(const std::string& hold_id, const std::string& currency,
                            std::int64_t amount_minor) {
  if (amount_minor <= 0 || amount_minor > Amount::kMaxMinor)
    violations_.push_back("hold " + hold_id + ": amount " + std::to_string(amount_minor) + " out of range");
  open_holds_[currency] += amount_minor;
}

AuditReport Auditor::finish() {
  AuditReport r;
  r.accounts = accounts_.size();
  r.entries = entries_;
  r.violations = std::move(violations_);
  struct Sums {
    __int128 customer = 0, joint = 0, hold = 0, outstanding = 0, settlement = 0, issuance = 0;
  };
  std::map<std::string, Sums> per_currency;
  for (const auto& [id, t] : accounts_) {
    const Account& a = t.account;
    if (t.posted != a.balance_minor)
      r.violations.push_back("account " + id + ": balance " + std::to_string(a.balance_minor) +
                             " but postings sum to " + to_text(t.posted));
    if (is_customer_money(a.kind) && a.balance_minor < 0)
      r.violations.push_back("account " + id + ": customer money is negative (" +
                             std::to_string(a.balance_minor) + ")");
    // E-cash outstanding is what this bank's e-cash in SEs is worth; below zero
    // the bank redeemed value it never issued (a credited note the registry never
    // saw, a clone). E-cash of other banks is redeemed against an interbank
    // claim, never against this account, so this is a violation in every network.
    if (a.kind == AccountKind::ecash_outstanding && a.balance_minor < 0)
      r.violations.push_back("account " + id + ": e-cash outstanding is negative (" +
                             std::to_string(a.balance_minor) + "): more e-cash redeemed than issued");
    if (a.balance_minor > Amount::kMaxMinor || a.balance_minor < -Amount::kMaxMinor)
      r.violations.push_back("account " + id + ": balance beyond the maximum amount");
    Sums& s = per_currency[a.currency];
    switch (a.kind) {
      case AccountKind::customer:
        s.customer += a.balance_minor;
        break;
      case AccountKind::joint:
        s.joint += a.balance_minor;
        break;
      case AccountKind::hold:
        s.hold += a.balance_minor;
        break;
      case AccountKind::ecash_outstanding:
        s.outstanding += a.balance_minor;
        break;
      case AccountKind::settlement:
        s.settlement += a.balance_minor;
        break;
      case AccountKind::issuance:
        s.issuance += a.balance_minor;
        break;
    }
  }
  for (const auto& [currency, s] : per_currency) {
    CurrencyFigures f;
    f.currency = currency;
    f.customer_minor = clamp64(s.customer);
    f.joint_minor = clamp64(s.joint);
    f.hold_minor = clamp64(s.hold);
    f.ecash_outstanding_minor = clamp64(s.outstanding);
    f.settlement_minor = clamp64(s.settlement);
    f.issued_minor = clamp64(-s.issuance);
    __int128 held = s.customer + s.joint + s.hold + s.outstanding + s.settlement;
    f.conserved = held == -s.issuance;
    if (!f.conserved)
      r.violations.push_back(currency + ": customer + joint + hold + outstanding + settlement = " +
                             to_text(held) + " but issued = " + to_text(-s.issuance));
    // Frozen money is exactly the open holds: a hold that ended twice, or
    // money in a hold account that no hold explains, shows up here.
    auto open = open_holds_.find(currency);
    __int128 open_sum = open == open_holds_.end() ? 0 : open->second;
    if (open_sum != s.hold)
      r.violations.push_back(currency + ": hold accounts hold " + to_text(s.hold) + " but open holds sum to " +
                             to_text(open_sum));
    r.currencies.push_back(std::move(f));
  }
  for (const auto& [currency, sum] : open_holds_)
    if (!per_currency.contains(currency))
      r.violations.push_back(currency + ": open holds sum to " + to_text(sum) + " but there is no account in " +
                             currency);
  *this = Auditor();
  return r;
}

AuditReport audit(const std::vector<Account>& accounts, const std::vector<JournalEntry>& journal) {
  Auditor a;
  for (const auto& acc : accounts) a.add_account(acc);
  for (const auto& e : journal) a.add_entry(e);
  return a.finish();
}

}  // namespace zf::ledger
