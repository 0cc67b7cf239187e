#!/usr/bin/env bash
# Installs PostgreSQL from Debian if missing, starts its cluster and creates
# the test role and database, each step only when needed (run as root).
# Prints the URL the tests use (export it as ZF_TEST_POSTGRES).
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "postgres: installing postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >&2
fi
read -r version cluster port status _ < <(pg_lsclusters -h | head -1) || true
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  pg_createcluster "$version" main >&2
  read -r version cluster port status _ < <(pg_lsclusters -h | head -1)
fi
if [ "$status" != online ]; then
  pg_ctlcluster "$version" "$cluster" start >&2
fi
as_pg() { runuser -u postgres -- "$@"; }
# The test role only reaches the server over loopback, with a password.
if ! as_pg psql -p "$port" -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'zf_test'" | grep -q 1; then
  as_pg psql -p "$port" -qc "CREATE ROLE zf_test LOGIN PASSWORD 'zf_test'" >&2
fi
if ! as_pg psql -p "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = 'zf_test'" | grep -q 1; then
  as_pg createdb -p "$port" -O zf_test zf_test >&2
fi
echo "postgresql://zf_test:zf_test@127.0.0.1:$port/zf_test"
