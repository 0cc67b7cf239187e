// Subcommand entry points of `zf`.
#pragma once

#include <CLI/CLI.hpp>

namespace zf::cli {

// Adds `zf ca ...` and `zf manufacturer ...`.
void add_ca_commands(CLI::App& app, int& exit_code);
// Adds `zf bank ...` (custody server).
void add_bank_commands(CLI::App& app, int& exit_code);
// Adds `zf registry ...` (transfer-record server).
void add_registry_commands(CLI::App& app, int& exit_code);
// Adds `zf se ...` (the emulated secure element).
void add_se_commands(CLI::App& app, int& exit_code);
// Adds `zf wallet ...` (the terminal).
void add_wallet_commands(CLI::App& app, int& exit_code);
// Adds `zf up`, `zf down` and `zf audit`.
void add_network_commands(CLI::App& app, int& exit_code);
// Adds `zf demo`.
void add_demo_command(CLI::App& app, int& exit_code);
// Adds `zf bench` (the Google Benchmark suite of bench/, when built with ZF_BENCH).
void add_bench_command(CLI::App& app, int& exit_code);

}  // namespace zf::cli
