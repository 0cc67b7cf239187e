// What the `zf wallet` commands share: the wallet and PIN options, opening
// and unlocking, errors in words, and reading notes and durations.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "core/json.h"
#include "wallet/wallet.h"

namespace zf::cli::wallet_cli {

struct Common {
  std::string dir;
  int pin_fd = -1;
};

// The PIN from --pin-fd, $ZF_PIN (an empty one is none) or a prompt.
Result<std::string> read_pin(const Common& c);
// An amount the person mistyped: say what one looks like.
Error amount_error(Error e);
// Prints `zf wallet WHAT: error` on stderr; returns the exit code 2.
int report(const Error& e, const char* what);
// Opens the wallet and verifies the PIN (kept in *pin_out for a command that
// unlocks again); on failure sets exit_code and returns null.
std::unique_ptr<wallet::Wallet> open_unlocked(const Common& c, const char* what, int& exit_code,
                                              std::string* pin_out = nullptr);
// A command that acts on a signed file: reads it (read_note) into `doc`, then
// opens and unlocks the wallet; on failure sets exit_code and returns null.
std::unique_ptr<wallet::Wallet> open_with_file(const Common& c, const std::string& file, const char* what,
                                               int& exit_code, std::string& doc);
// Adds --wallet and --pin-fd.
CLI::App* with_common(CLI::App* cmd, const std::shared_ptr<Common>& c);
void print(const Json& j);
// What the terminal did on the person's behalf (a renewed CRL), on stderr.
void say_notices(wallet::Wallet& w);
void print_notes(const Json& list);
// "90s", "30m", "12h", "7d" or plain seconds, at most 366 days.
Result<std::int64_t> parse_duration(const std::string& text);
// A note as a file holds it ('-' for stdin), without the trailing newline.
Result<std::string> read_note(const std::string& file);

// A designated processing number for a command's document (docs/bank-api.md
// "Processing numbers"): --process-no N uses one the person has, --priority
// asks the bank for one first.
struct Priority {
  bool ask = false;
  std::string number;
};
void add_priority_options(CLI::App* cmd, const std::shared_ptr<Priority>& p);
// The number the document carries ("" for none), asked of `bank` with a query
// for `account` when --priority was given.
Result<std::string> process_no_for(wallet::Wallet& w, const Priority& p, const std::string& bank,
                                   const std::string& account);

// `zf wallet receive-nearby`, `pay-nearby`, `undelivered`, `answer`, `refuse`, `reconcile`.
void add_nearby_commands(CLI::App* wallet, int& exit_code);
// `zf wallet escrow pay|release|accept|refund|close|list`.
void add_escrow_commands(CLI::App* wallet, int& exit_code);
// `zf wallet transfer`.
void add_bank_commands(CLI::App* wallet, int& exit_code);
// `zf wallet process-no` (wallet_bank.cc).
void add_process_no_command(CLI::App* wallet, int& exit_code);
// `zf wallet events` (wallet_bank.cc).
void add_events_command(CLI::App* wallet, int& exit_code);
// `zf wallet joint ...` (wallet_bank.cc).
void add_joint_commands(CLI::App* wallet, int& exit_code);
// `zf wallet hold ...` (wallet_hold.cc).
void add_hold_commands(CLI::App* wallet, int& exit_code);

}  // namespace zf::cli::wallet_cli
