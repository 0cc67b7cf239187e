#!/usr/bin/env bash
# Sets up (idempotently), builds and runs the whole test suite.
#
# ZF_SANITIZE=1 then builds the unit suites and the fuzz-corpus replays with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs them there: the
# parsers, JOSE, X.509, the ledger rules, the SE applet and device (CI runs
# this; see docs/testing.md for why these). ZF_SANITIZE=all builds everything
# under the sanitizers and runs every suite but the timing-heavy crash and
# model-based loops.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache (if installed) keys on paths relative to the checkout, so another
# clone of the same commit reuses the objects.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
scripts/setup.sh build
# The store suites and the services' PostgreSQL runs use a real server.
ZF_TEST_POSTGRES=$(scripts/postgres.sh)
export ZF_TEST_POSTGRES
ctest --test-dir build --output-on-failure -j2 --timeout 600

sanitize=${ZF_SANITIZE:-0}
if [ "$sanitize" != 0 ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  if [ "$sanitize" = all ]; then
    cmake -S . -B build-asan-all -G Ninja -DZF_SANITIZE=ON -DZF_BENCH=OFF "${launcher[@]}" >/dev/null
    cmake --build build-asan-all
    ctest --test-dir build-asan-all --output-on-failure -j2 --timeout 900 -E '^(CrashTest|ModelTest)'
  else
    # Only the test directories that need no service process, and only their
    # targets (not the zf command), at -O1 with line tables only: the sanitizer
    # build stays within CI's budget and reports still name file and line.
    cmake -S . -B build-asan -G Ninja -DZF_SANITIZE=ON -DZF_BENCH=OFF "${launcher[@]}" \
      -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
      -DZF_TEST_DIRS="core;store;ledger;se;se_host" >/dev/null
    cmake --build build-asan --target core_tests store_tests ledger_tests se_tests se_host_tests \
      jose_replay document_replay amount_replay json_replay apdu_replay
    ctest --test-dir build-asan --output-on-failure -j2 --timeout 900
  fi
fi
