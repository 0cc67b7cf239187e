// Runs a fuzz target's LLVMFuzzerTestOneInput over files, without libFuzzer, so the seed
// corpus is a normal test in every build (g++ included).
//
// Usage: <target>_replay PATH...   (each PATH a file or a directory, read recursively)
// Prints each input before running it (the last line names a crashing input) and
// "ran N inputs" at the end. Fails when a path is missing or no input was found, so an
// empty or misplaced corpus cannot pass silently.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Optional in a target; libFuzzer calls it once before the first input.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace fs = std::filesystem;

namespace {

bool run_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
  std::fflush(stdout);
  // A copy of exactly `size` bytes, so reads past the end are caught by ASan.
  std::vector<std::uint8_t> input(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(input.data(), input.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  std::size_t ran = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_regular_file(arg, ec)) {
      if (run_file(arg))
        ++ran;
      else
        ok = false;
      continue;
    }
    if (!fs::is_directory(arg, ec)) {
      std::fprintf(stderr, "no such file or directory: %s\n", arg.c_str());
      ok = false;
      continue;
    }
    // Sorted, so a run is reproducible and its log comparable.
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(arg, ec))
      if (entry.is_regular_file()) files.push_back(entry.path());
    if (ec) {
      std::fprintf(stderr, "cannot list %s: %s\n", arg.c_str(), ec.message().c_str());
      ok = false;
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (run_file(f))
        ++ran;
      else
        ok = false;
    }
  }
  std::printf("ran %zu inputs\n", ran);
  if (ran == 0) {
    std::fprintf(stderr, "no inputs found: an empty corpus is a failure\n");
    return 1;
  }
  return ok ? 0 : 1;
}
