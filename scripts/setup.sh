#!/usr/bin/env bash
# Installs what zhuanfu needs on Debian 12 (idempotent; run as root) and builds it.
# Usage: scripts/setup.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libssl-dev openssl nlohmann-json3-dev libsqlite3-dev sqlite3 libpq-dev libcpp-httplib-dev libboost-dev
  libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  clang libclang-rt-14-dev
  ccache
  # Independent X.509 readers for the interop tests (tests/interop/cert_reader.*).
  python3 python3-cryptography golang-go
  # The model checker for the protocol models (models/, tests/models).
  spin
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the independent JOSE implementation in the interop tests.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -f tests/interop/package-lock.json ] && [ ! -d tests/interop/node_modules/jose ]; then
  (cd tests/interop && npm ci --no-audit --no-fund --silent)
fi
# The independent OpenAPI validator the contract tests run on docs/*.yaml.
if [ -f tests/openapi/package-lock.json ] && [ ! -d tests/openapi/node_modules/@apidevtools/swagger-parser ]; then
  (cd tests/openapi && npm ci --no-audit --no-fund --silent)
fi

# ccache makes a rebuild of an unchanged file (another clone, the sanitizer
# build's shared sources) a copy; scripts/test.sh sets its base directory.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build "$build"
