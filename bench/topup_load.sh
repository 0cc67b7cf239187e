#!/usr/bin/env bash
# Top-ups per second through a running network: `zf up` with N users, then N
# terminals running `zf wallet topup` in a loop at once. Prints the wall time,
# top-ups per second and the CPU the bank and the registry spent per top-up
# (their /proc utime+stime over the run). Every process is real; nothing is
# in-process.
# Usage: bench/topup_load.sh [zf-binary] [terminals] [top-ups-per-terminal]
set -euo pipefail
zf=${1:-build/src/cli/zf}
terminals=${2:-8}
each=${3:-20}
dir=$(mktemp -d "${TMPDIR:-/tmp}/zf-load-XXXXXX")
trap '"$zf" down "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

users=()
for i in $(seq 1 "$terminals"); do users+=("u$i"); done
"$zf" up "$dir" --users "${users[@]}" >/dev/null

cpu_ticks() {  # utime+stime of the process named $1 in run/pids
  local pid
  pid=$(awk -v n="$1" '$2 == n {print $1}' "$dir/run/pids" | tail -1)
  awk '{print $14 + $15}' "/proc/$pid/stat"
}
bank=$(awk '$2 ~ /^bank-/ {print $2}' "$dir/run/pids" | tail -1)
bank0=$(cpu_ticks "$bank")
reg0=$(cpu_ticks registry)
start=$(date +%s.%N)
for u in "${users[@]}"; do
  (
    for _ in $(seq 1 "$each"); do
      ZF_PIN=123456 "$zf" wallet topup 'CNY 0.01' --wallet "$dir/wallets/$u" --bank "$bank" \
        --account "$u-main" >/dev/null
    done
  ) &
done
wait
end=$(date +%s.%N)
bank1=$(cpu_ticks "$bank")
reg1=$(cpu_ticks registry)
hz=$(getconf CLK_TCK)
n=$((terminals * each))
awk -v n="$n" -v s="$start" -v e="$end" -v b=$((bank1 - bank0)) -v r=$((reg1 - reg0)) -v hz="$hz" \
  -v t="$terminals" 'BEGIN {
    w = e - s
    printf "%d top-ups from %d terminals in %.2f s: %.1f top-ups/s\n", n, t, w, n / w
    printf "bank CPU %.1f ms per top-up, registry CPU %.1f ms per top-up\n", b * 1000 / hz / n, r * 1000 / hz / n
  }'
"$zf" audit "$dir" >/dev/null && echo "audit: ok"
