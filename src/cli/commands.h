// Subcommand entry points of `zf`.
#pragma once

#include <CLI/CLI.hpp>

namespace zf::cli {

// Adds `zf ca ...` and `zf manufacturer ...`.
void add_ca_commands(CLI::App& app, int& exit_code);
// Adds `zf demo`.
void add_demo_command(CLI::App& app, int& exit_code);

}  // namespace zf::cli
