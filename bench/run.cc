#include "run.h"

#include <benchmark/benchmark.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include <cstdio>
#include <exception>
#include <filesystem>

#include "bench_world.h"

#ifndef ZF_BUILD_TYPE
#define ZF_BUILD_TYPE "unknown"
#endif

namespace zf::bench {

int run(const std::vector<std::string>& args) {
  std::vector<std::string> storage{"zf bench"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(storage.size());
  benchmark::Initialize(&argc, argv.data());
  if (benchmark::ReportUnrecognizedArguments(argc, argv.data())) return 2;

  // What the numbers depend on, printed in the context block of every report.
  benchmark::AddCustomContext("openssl", OpenSSL_version(OPENSSL_VERSION));
  benchmark::AddCustomContext("sqlite", sqlite3_libversion());
  benchmark::AddCustomContext("compiler", "g++ " __VERSION__);
#ifdef NDEBUG
  benchmark::AddCustomContext("build", ZF_BUILD_TYPE ", asserts off");
#else
  benchmark::AddCustomContext("build", ZF_BUILD_TYPE ", asserts on");
#endif
  benchmark::AddCustomContext("tmpdir", std::filesystem::temp_directory_path().string());

  int code = 0;
  try {
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zf bench: set-up failed: %s\n", e.what());
    code = 1;
  }
  release_worlds();
  benchmark::Shutdown();
  return code;
}

}  // namespace zf::bench
