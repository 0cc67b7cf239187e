#!/usr/bin/env bash
# Sets up (idempotently), builds and runs the whole test suite.
# ZF_SANITIZE=1 also builds with AddressSanitizer + UndefinedBehaviorSanitizer and
# runs the suites again there (the crash and model-based loops, which are
# timing-heavy, run in the plain build only).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
ctest --test-dir build --output-on-failure -j2 --timeout 600

if [ "${ZF_SANITIZE:-0}" = 1 ]; then
  cmake -S . -B build-asan -G Ninja -DZF_SANITIZE=ON -DZF_BENCH=OFF >/dev/null
  cmake --build build-asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 -E '^(CrashTest|ModelTest)'
fi
