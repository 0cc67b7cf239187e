// The seed of a randomized crash test: ZF_CRASH_SEED when set (decimal or
// 0x...), to replay a failing round, otherwise a fresh random one. Every test
// that draws one prints it on stdout and in each failure message
// ("replay: ZF_CRASH_SEED=<seed> ...") so a failure replays from the log.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>

namespace zf::test {

// ZF_CRASH_SEED, if set.
inline std::optional<std::uint64_t> env_crash_seed() {
  const char* env = std::getenv("ZF_CRASH_SEED");
  if (!env || !*env) return std::nullopt;
  return std::strtoull(env, nullptr, 0);
}

// ZF_CRASH_SEED or a random seed (32 bits, so std::mt19937 takes all of it).
inline std::uint32_t crash_seed() {
  if (auto s = env_crash_seed()) return static_cast<std::uint32_t>(*s);
  return std::random_device{}();
}

// The line that replays this test with `seed`.
inline std::string replay_line(std::uint64_t seed) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string filter = info ? std::string(info->test_suite_name()) + "." + info->name() : "*";
  return "replay: ZF_CRASH_SEED=" + std::to_string(seed) + " --gtest_filter='" + filter + "'";
}

}  // namespace zf::test
