// What `zf wallet` says to a person: amounts as "CNY 12.50", times as local
// dates, short sentences and tables. Each function turns the machine form a
// command prints with --json (docs/wallet-cli.md) into text; none does I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/amount.h"
#include "core/json.h"
#include "wallet/wallet.h"

namespace zf::cli::out {

// "CNY 12.50"; "? 1250" when the figures are not an amount.
std::string money(const std::string& currency, std::int64_t minor);
// "+CNY 12.50", "-CNY 12.50"; "CNY 0.00" for zero.
std::string signed_money(const std::string& currency, std::int64_t minor);
// A Unix time as the person's local date and time, "2026-12-02 14:03".
std::string local_date(std::int64_t unix_s);
// A span of time in words, rounded down to its largest unit: "3 seconds", "10 minutes", "30 days".
std::string duration_words(std::int64_t seconds);

// `zf wallet balance` from the SE's info (GET DATA info), the outbox (for the
// amounts of top-ups and deposits awaiting receipts) and what
// Wallet::notes_not_received() found (or why the registry could not be asked).
std::string balance_text(const Json& info, const std::vector<wallet::OutboxEntry>& outbox,
                         const Result<Json>& not_received);

// "E-cash: CNY 12.50, USD 3.00" from the SE's info.
std::string holdings_text(const Json& info);
// `zf wallet retry`'s summary ({adopted, settled, pending, refused, errors}) in sentences.
std::string retry_text(const Json& retry);

// `zf wallet history`: the SE's log (GET DATA log) as a table, oldest first.
std::string se_log_text(const Json& se_log);
// The terminal's own record (history.jsonl), for when the SE's log is not shown.
std::string terminal_history_text(const Json& events,
                                  const std::vector<wallet::OutboxEntry>& outbox);

// A bank's reason for a refusal, in words: "account alice-main cannot cover CNY 500.00
// (insufficient_funds)".
std::string bank_reason(Errc reason, const std::string& bank, const std::string& account,
                        const std::optional<Amount>& amount);

// A failed `topup` or `deposit` (`kind`) in words, saying whether money moved:
// a bank's signed refusal names its reason; otherwise the SE's info before and
// after the command (either may have failed) tells what the SE did, unless
// the error already says so.
std::string value_failure(const std::string& kind, const Error& e, const Amount& amount,
                          const std::string& bank, const std::string& account,
                          const Result<Json>& before, const Result<Json>& after);

// `zf wallet account`: the balance and the recent entries of a bank statement.
std::string statement_text(const Json& statement, const std::string& bank);
// One event of `zf wallet events` (Wallet::account_events) as a line: when,
// what moved (or what is held) and a sentence from the verified receipt.
std::string feed_event_text(const std::string& currency, const Json& event);
// Why `zf wallet account` shows nothing: the bank's refusal in words, or what failed.
std::string query_failure(const Error& e, const std::string& bank, const std::string& account);

}  // namespace zf::cli::out
