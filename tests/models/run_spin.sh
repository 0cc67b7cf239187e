#!/usr/bin/env bash
# Checks the protocol models in models/ with SPIN (models/README.md):
#   - the model of the protocol must hold: pan reports errors: 0 after a full,
#     exhaustive search (no depth truncation, no memory bound hit), and every
#     statement of the protocol's processes is reached (no vacuous part);
#   - each broken variant must fail: pan reports an error, and SPIN's replay of
#     the trail (spin -t -p) prints the counterexample, whose steps are shown.
# Usage: tests/models/run_spin.sh MODELS_DIR
# Runs in a temporary directory of its own and removes it afterwards.
set -euo pipefail

models=${1:?usage: run_spin.sh MODELS_DIR}
models=$(cd "$models" && pwd)
cc=${CC:-gcc}
if ! command -v spin >/dev/null; then
  echo "run_spin: FAIL: spin is not installed. It is the Debian package 'spin' (scripts/setup.sh installs it:" \
       "apt-get install spin); the protocol models cannot be checked without it." >&2
  exit 1
fi
if ! command -v "$cc" >/dev/null; then
  echo "run_spin: FAIL: no C compiler '$cc' to build SPIN's verifier (build-essential)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/zf-spin.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0
# Deep enough for every run (pan reports the depth it reached: about 200 for
# f2f.pml and cpay.pml, 1,300 for hold.pml); the check below fails if it
# ever is not.
pan_flags=(-m100000 -w22)
# -o3: no statement merging, so pan's list of unreached statements is exact
# inside atomic sequences too (the vacuity check below relies on it). The
# trail is replayed with the same options.
spin_flags=(-o3)

# build CFLAGS NAME MODEL DEFINES...: spin -a and gcc -DSAFETY in $work/NAME.
build() {
  local cflags=$1 name=$2 model=$3
  shift 3
  local dir="$work/$name"
  mkdir -p "$dir"
  cp "$models/$model" "$dir/"
  (cd "$dir" && spin "${spin_flags[@]}" "$@" -a "$model" >spin.out 2>&1 && "$cc" $cflags -DSAFETY -o pan pan.c >cc.out 2>&1) || {
    echo "run_spin: FAIL: $name: spin -a or the verifier's build failed:" >&2
    cat "$dir/spin.out" "$dir/cc.out" >&2 2>/dev/null || true
    return 1
  }
}

# The search must have been complete: a full state space, not cut by depth or memory.
exhaustive() {
  local out=$1
  grep -q "^Full statespace search for:" "$out" &&
    ! grep -qE "max search depth too small|reached -DMEMLIM bound|out of memory|search not completed|Bit statespace" "$out"
}

# holds NAME MODEL DEFINES...: the model must verify.
holds() {
  local name=$1 model=$2
  shift 2
  local dir="$work/$name" start=$SECONDS
  build "-O2" "$name" "$model" "$@" || { failed=1; return; }
  (cd "$dir" && ./pan "${pan_flags[@]}" >pan.out 2>&1) || true
  local summary
  summary=$(grep -E "errors:|states, stored" "$dir/pan.out" | tr -s ' \t' ' ' | paste -sd' ' || true)
  if ! grep -qE "errors: 0$" "$dir/pan.out"; then
    echo "run_spin: FAIL: $name: pan found an error where the model must hold ($summary):" >&2
    cat "$dir/pan.out" >&2
    (cd "$dir" && [ -f "$model.trail" ] && spin "${spin_flags[@]}" "$@" -t -p "$model" | grep -E "^ *@|VIOLATED|assertion" >&2) || true
    failed=1
    return
  fi
  if ! exhaustive "$dir/pan.out"; then
    echo "run_spin: FAIL: $name: the search was not exhaustive:" >&2
    cat "$dir/pan.out" >&2
    failed=1
    return
  fi
  # Statements pan never reached, but for what runs only on a violation (the
  # assertions, their messages, the monitor) and process ends.
  local unreached
  unreached=$(awk '/^unreached in proctype/ { p = $4 } /^\t[^(]/ && p != "" && p != "Monitor" && !/assert\(|VIOLATED:|"-end-"/' "$dir/pan.out")
  if [ -n "$unreached" ]; then
    echo "run_spin: FAIL: $name: parts of the model are never reached, so nothing is checked there:" >&2
    echo "$unreached" >&2
    failed=1
    return
  fi
  echo "ok: $name holds: $summary, exhaustive ($((SECONDS - start)) s)"
}

# breaks NAME MODEL DEFINES...: the variant must fail with a counterexample.
breaks() {
  local name=$1 model=$2
  shift 2
  local dir="$work/$name" start=$SECONDS
  # -O0: finding a counterexample takes less than compiling the verifier well.
  # -DREACH: needed by -i (below) to find the shortest counterexample.
  build "-O0 -DREACH" "$name" "$model" "$@" || { failed=1; return; }
  # -i: keep searching for shorter counterexamples; the trail is the shortest.
  (cd "$dir" && ./pan "${pan_flags[@]}" -i >pan.out 2>&1) || true
  if ! grep -qE "errors: [1-9][0-9]*$" "$dir/pan.out" || [ ! -f "$dir/$model.trail" ]; then
    echo "run_spin: FAIL: $name: pan found no error in a variant that must fail:" >&2
    cat "$dir/pan.out" >&2
    failed=1
    return
  fi
  (cd "$dir" && spin "${spin_flags[@]}" "$@" -t -p "$model" >replay.out 2>&1) || true
  if ! grep -q "VIOLATED:" "$dir/replay.out" || ! grep -q "assertion violated" "$dir/replay.out"; then
    echo "run_spin: FAIL: $name: spin -t -p printed no counterexample:" >&2
    tail -n 40 "$dir/replay.out" >&2
    failed=1
    return
  fi
  local steps
  steps=$(grep -cE "^ *[0-9]+:" "$dir/replay.out" || true)
  echo "ok: $name fails as it must ($((SECONDS - start)) s); the counterexample, $steps steps, in short:"
  grep -E "^ *(@|VIOLATED:)" "$dir/replay.out" | sed -e 's/^ *//' -e 's/^/    /'
}

total=$SECONDS
holds f2f f2f.pml
breaks f2f-credit-before-persist f2f.pml -DBROKEN_CREDIT_BEFORE_PERSIST
breaks f2f-refuse-after-credit f2f.pml -DBROKEN_REFUSE_AFTER_CREDIT
breaks f2f-send-before-persist f2f.pml -DBROKEN_SEND_BEFORE_PERSIST
# The applet before the fixes the model led to (models/README.md, "Findings"): these fail too.
breaks f2f-ack-for-refused f2f.pml -DACK_FOR_REFUSED
breaks f2f-close-on-record f2f.pml -DCLOSE_ON_RECORD

holds cpay cpay.pml
holds cpay-restored-payee cpay.pml -DROLLBACK
# A payee SE that would accept a note it refunded: the registry alone still lets one ending through.
holds cpay-payee-both cpay.pml -DBROKEN_PAYEE_BOTH
breaks cpay-accept-on-key cpay.pml -DBROKEN_ACCEPT_ON_KEY
breaks cpay-close-on-any-record cpay.pml -DBROKEN_CLOSE_ANY_RECORD
breaks cpay-payee-both-refund-on-signature cpay.pml -DBROKEN_PAYEE_BOTH -DBROKEN_REFUND_ON_SIGNATURE
breaks cpay-restored-payee-refund-on-signature cpay.pml -DROLLBACK -DBROKEN_REFUND_ON_SIGNATURE
breaks cpay-accept-checks-time cpay.pml -DACCEPT_CHECKS_TIME
breaks cpay-refund-after-claim cpay.pml -DREFUND_AFTER_CLAIM

holds hold hold.pml
# Each of the two guards of the transaction that ends a hold is enough alone.
holds hold-guard-key-only hold.pml -DGUARD_KEY_ONLY
holds hold-row-check-only hold.pml -DROW_CHECK_ONLY
breaks hold-separate-guards hold.pml -DSEPARATE_GUARDS
breaks hold-check-then-act hold.pml -DCHECK_THEN_ACT
breaks hold-expiry-in-memory hold.pml -DEXPIRY_IN_MEMORY
# The bank as it is (models/README.md, hold.pml "Findings"): this fails too,
# and holds once a committed document is answered from the table first.
breaks hold-doc-expires hold.pml -DDOC_EXPIRES
holds hold-doc-expires-receipt-first hold.pml -DDOC_EXPIRES -DRECEIPT_FIRST
echo "run_spin: $((SECONDS - total)) s in all"
exit $failed
