// `zf bench`: the benchmarks of bench/ (Google Benchmark). Speed targets live
// there, never in timed unit tests; BENCHMARKS.md says how to read them.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#ifdef ZF_WITH_BENCH
#include "bench/run.h"
#endif

namespace zf::cli {

void add_bench_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "bench",
      "Run the benchmarks; Google Benchmark flags pass through "
      "(e.g. --benchmark_filter=Es256, --benchmark_repetitions=5, --help for all)");
  // Everything after `bench` is Google Benchmark's, --help included.
  cmd->prefix_command();
  cmd->set_help_flag();
  cmd->callback([cmd, &exit_code] {
    std::vector<std::string> args = cmd->remaining();
#ifdef ZF_WITH_BENCH
    exit_code = zf::bench::run(args);
#else
    (void)args;
    std::fprintf(stderr, "zf bench: this zf was built without benchmarks (cmake -DZF_BENCH=ON)\n");
    exit_code = 2;
#endif
  });
}

}  // namespace zf::cli
