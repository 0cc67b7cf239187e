// `zf bench load` runs its load through real processes and reports what it
// measured: every top-up acknowledged, each SE's receipts applied afterwards,
// and the audit of the network green. How fast is not asserted here (speed
// targets live in the benchmark); that the figures are there and consistent is.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "core/json.h"
#include "system_fixture.h"

namespace zf::test {
namespace {

TEST(BenchLoad, ReportsEveryTopupAcknowledgedAndTheAuditGreen) {
  const std::string out = (std::filesystem::temp_directory_path() / ("zf-load-report-" + std::to_string(::getpid()) + ".json")).string();
  const std::string cmd = std::string(ZF_BINARY) +
                          " bench load --ses 2 --per-se 6 --rounds 2 --in-flight 4 --priority-share 0.5 --out '" + out +
                          "' > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto report = parse_json_strict(slurp(out));
  std::filesystem::remove(out);
  ASSERT_TRUE(report) << report.error().message();
  const Json& r = *report;
  EXPECT_EQ(r["topups"], 2 * 6 * 2);
  EXPECT_EQ(r["errors"], 0);
  EXPECT_TRUE(r["audit_ok"].get<bool>()) << r.dump(2);
  EXPECT_EQ(r["priority_latency"]["count"], 2 * 3 * 2) << "half of each SE's documents carried a number";
  EXPECT_GT(r["topups_per_s"].get<double>(), 0);
  EXPECT_GT(r["bank_cpu_ms_per_topup"].get<double>(), 0);
  EXPECT_GT(r["crypto_ceiling_per_s"].get<double>(), 0);
  EXPECT_LE(r["latency"]["p50_ms"].get<double>(), r["latency"]["p99_ms"].get<double>());
}

}  // namespace
}  // namespace zf::test
