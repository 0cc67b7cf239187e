// The entry point of `zf bench` (src/cli/bench_command.cc).
#pragma once

#include <string>
#include <vector>

namespace zf::bench {

// Runs the registered benchmarks; `args` are Google Benchmark flags
// (--benchmark_filter=..., --benchmark_repetitions=...). Returns the exit code:
// 0, 1 when a benchmark's set-up failed, 2 for flags it does not know.
int run(const std::vector<std::string>& args);

}  // namespace zf::bench
