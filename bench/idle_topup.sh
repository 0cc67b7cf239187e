#!/usr/bin/env bash
# How long one `zf wallet topup` takes while N idle TCP connections are open
# against the bank and N against the registry (bash's /dev/tcp: connected
# sockets that never send a byte). Real processes from `zf up`.
# Usage: bench/idle_topup.sh [zf-binary] [idle-connections]
set -euo pipefail
zf=${1:-build/src/cli/zf}
idle=${2:-1000}
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d "${TMPDIR:-/tmp}/zf-idle-XXXXXX")
trap '"$zf" down "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$zf" up "$dir" --users alice >/dev/null
bank=$(awk '$2 ~ /^bank-/ {print $2}' "$dir/run/pids" | tail -1)
bank_port=$(cat "$dir/run/$bank.port")
registry_port=$(cat "$dir/run/registry.port")

for _ in $(seq 1 "$idle"); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$bank_port"
  exec {fd}<>"/dev/tcp/127.0.0.1/$registry_port"
done
start=$(date +%s.%N)
ZF_PIN=123456 timeout 120 "$zf" wallet topup 'CNY 1.00' --wallet "$dir/wallets/alice" --bank "$bank" \
  --account alice-main >/dev/null && result=done || result="failed (exit $?)"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$idle" -v r="$result" \
  'BEGIN { printf "topup with %d idle connections at the bank and %d at the registry: %s in %.3f s\n", n, n, r, e - s }'
