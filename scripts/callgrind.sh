#!/usr/bin/env bash
# Instructions per operation (callgrind), for before/after comparisons:
# runs benches/instructions.rs at two sizes per workload and prints
# (Ir(2N) - Ir(N)) / N. Usage: scripts/callgrind.sh [N] (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
cargo bench --bench instructions --no-run >/dev/null 2>&1
bin=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
ir() {
  local out
  out=$(mktemp)
  CRONLANE_OPS=$1 CRONLANE_N=$2 CRONLANE_PASSES=${3:-2} valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" 2>/dev/null >/dev/null
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}'
  rm -f "$out"
}
declare -A per
for kind in register dispatch recurring; do
  a=$(ir "$kind" "$n"); b=$(ir "$kind" $((2 * n)))
  per[$kind]=$(( (b - a) / n ))
done
for kind in steady steady_named; do
  a=$(ir "$kind" "$n" 2); b=$(ir "$kind" "$n" 4)
  per[$kind]=$(( (b - a) / (2 * n) ))
done
echo "register: ${per[register]} instructions per registration"
echo "dispatch: $(( per[dispatch] - per[register] )) instructions per fire (one-shot, one run_pending)"
echo "recurring: ${per[recurring]} instructions per recurring task (register + drain + fire + re-plan)"
echo "steady: ${per[steady]} instructions per fire of a recurring every(1 s) task in steady state (fire + re-plan + put back)"
echo "steady_named: ${per[steady_named]} instructions per fire of a named recurring task in steady state"
