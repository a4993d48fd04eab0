#!/usr/bin/env bash
# Instructions per durable fire (callgrind): 100 % deterministic, for
# before/after comparisons of the durable pass (benches/durable.rs,
# CRONLANE_DURABLE=profile). Usage: scripts/callgrind_durable.sh [N]
# (default 20000). Prints (Ir(4 passes) - Ir(2 passes)) / (2 N) for each
# delivery policy.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
cargo bench --features redb --bench durable --no-run >/dev/null 2>&1
bin=$(ls -t target/release/deps/durable-* | grep -v '\.d$' | head -1)
ir() {
  local out
  out=$(mktemp)
  CRONLANE_DURABLE=profile CRONLANE_DELIVERY=$1 CRONLANE_N=$n CRONLANE_PASSES=$2 \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" 2>/dev/null >/dev/null
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}'
  rm -f "$out"
}
for d in most least; do
  a=$(ir "$d" 2); b=$(ir "$d" 4)
  echo "at_${d}_once: $(( (b - a) / (2 * n) )) instructions per durable fire (100 % of a pass: engine + bookkeeping + store commit)"
done
