// `zf bench load` (src/cli/bench_load.cc): top-ups through a fresh network of
// real processes, documents signed before the clock starts, a fixed number in
// flight over keep-alive HTTPS; throughput, latency percentiles, the services'
// CPU per top-up and the crypto ceiling measured in the same run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/json.h"

namespace zf::cli {

struct LoadOptions {
  int users = 8;             // SEs (and accounts), each a process
  int per_se = 16;           // top-ups each SE signs per round (its pending limit is 16)
  int rounds = 4;            // rounds of per_se x users top-ups; only the sending is timed
  int in_flight = 32;        // concurrent clients, each with one keep-alive connection
  double priority_share = 0;  // share of each SE's documents carrying a processing number
  std::uint64_t seed = 1;    // the order the documents are sent in
  bool keep = false;         // keep the network's directory
  std::string zf_binary;     // default: this process
  std::string postgres;      // the bank and registry databases' server (NetworkOptions::postgres); empty: SQLite
};

// Runs the load and returns the report (JSON); `progress` hears what it does
// and a progress bar (lines starting with '\r' redraw it).
Result<Json> run_topup_load(const LoadOptions& o, const std::function<void(const std::string&)>& progress);
// The report in sentences.
std::string load_report_text(const Json& report);

}  // namespace zf::cli
