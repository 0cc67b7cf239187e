#!/usr/bin/env bash
# Sets up (idempotently), builds and runs the whole test suite, then the unit and
# service suites again under AddressSanitizer + UndefinedBehaviorSanitizer.
# ZF_SKIP_SANITIZE=1 skips the sanitizer pass (quicker local runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
ctest --test-dir build --output-on-failure -j2 --timeout 600

if [ "${ZF_SKIP_SANITIZE:-0}" != 1 ]; then
  cmake -S . -B build-asan -G Ninja -DZF_SANITIZE=ON -DZF_BENCH=OFF >/dev/null
  cmake --build build-asan
  # The crash and model-based loops are timing-heavy; they run in the plain build.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 -E '^(CrashTest|ModelTest)'
fi
