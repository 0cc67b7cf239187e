// `zf bench`: the benchmarks of bench/ (Google Benchmark). Speed targets live
// there, never in timed unit tests; BENCHMARKS.md says how to read them.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/bench_load.h"
#include "cli/commands.h"
#ifdef ZF_WITH_BENCH
#include "bench/run.h"
#endif

namespace zf::cli {

namespace {

// `zf bench load [options]`: its own options (bench passes everything on).
int run_load_command(const std::vector<std::string>& args) {
  CLI::App app("zf bench load: top-ups through a fresh local network, documents signed before the clock starts",
               "zf bench load");
  LoadOptions o;
  std::string out;
  bool json = false;
  app.add_option("--ses", o.users, "SEs, each its own process with its own account")->check(CLI::Range(1, 256));
  app.add_option("--per-se", o.per_se, "top-ups each SE signs per round")->check(CLI::Range(1, 16));
  app.add_option("--rounds", o.rounds, "rounds (only the sending is timed)")->check(CLI::Range(1, 10000));
  app.add_option("--in-flight", o.in_flight, "concurrent keep-alive clients")->check(CLI::Range(1, 1024));
  app.add_option("--priority-share", o.priority_share,
                 "share of documents with a designated processing number (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", o.seed, "the sending order's seed");
  app.add_option("--postgres", o.postgres,
                 "the bank and the registry keep their data in this PostgreSQL database (new schemas, dropped "
                 "after); default: SQLite");
  app.add_option("--out", out, "also write the report as JSON to this file");
  app.add_flag("--json", json, "print the report as JSON");
  app.add_flag("--keep", o.keep, "keep the network's directory");
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const bool tty = ::isatty(2);
  auto r = run_topup_load(o, [tty](const std::string& s) {
    if (!tty && s.starts_with("\r")) return;  // the bar only redraws on a terminal
    std::fputs(s.c_str(), stderr);
    std::fflush(stderr);
  });
  if (!r) {
    std::fprintf(stderr, "zf bench load: %s\n", r.error().message().c_str());
    return 2;
  }
  if (!out.empty()) {
    std::FILE* f = std::fopen(out.c_str(), "w");
    if (!f) return std::fprintf(stderr, "zf bench load: cannot write %s\n", out.c_str()), 2;
    std::fprintf(f, "%s\n", r->dump(2).c_str());
    std::fclose(f);
  }
  if (json) std::printf("%s\n", r->dump(2).c_str());
  else std::fputs(load_report_text(*r).c_str(), stdout);
  return (*r)["audit_ok"].get<bool>() && (*r)["errors"].get<std::int64_t>() == 0 ? 0 : 1;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "bench",
      "Run the benchmarks (`zf bench load --help`: a load on a fresh network); Google Benchmark flags pass through "
      "(e.g. --benchmark_filter=Es256, --benchmark_repetitions=5, --help for all)");
  // Everything after `bench` is Google Benchmark's, --help included.
  cmd->prefix_command();
  cmd->set_help_flag();
  cmd->callback([cmd, &exit_code] {
    std::vector<std::string> args = cmd->remaining();
    if (!args.empty() && args.front() == "load") {
      exit_code = run_load_command(std::vector<std::string>(args.begin() + 1, args.end()));
      return;
    }
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
