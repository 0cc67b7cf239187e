// Small helpers every `zf` subcommand uses: files, tokens, error reporting.
#pragma once

#include <string>

#include "core/error.h"

namespace zf::cli {

// The whole file ("" if it cannot be read; the caller's parser then says what is wrong).
std::string read_all(const std::string& path);
// Without trailing newlines and spaces (token and PEM files end with a newline).
std::string strip(std::string s);
// Prints "zf <what>: <error>" on stderr; returns 2, the exit code of refused input.
int complain(const Error& e, const std::string& what);

}  // namespace zf::cli
