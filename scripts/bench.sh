#!/usr/bin/env bash
# Reproduces every number in BENCHMARKS.md, then draws the charts.
#   scripts/bench.sh            # full run (about 25 minutes on 2 cores)
# Environment: BENCH_ARGS (criterion flags, default "--warm-up-time 1
# --measurement-time 3"), CARGO_TARGET_DIR (root crate, default
# target), PEER_TARGET_DIR (peer-benches, default peer-benches/target).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ARGS=${BENCH_ARGS:---warm-up-time 1 --measurement-time 3}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PEER_TARGET=${PEER_TARGET_DIR:-$ROOT/peer-benches/target}
OUT=${BENCH_OUT:-$TARGET/bench-out}
mkdir -p "$OUT"

# 1. Engine benches (cronlane and the Mutex<BinaryHeap> baseline).
CARGO_TARGET_DIR=$TARGET cargo bench --bench engine -- $ARGS 2>&1 | tee "$OUT/engine.txt"

# 2. Peers (separate crate, own workspace). Criterion output goes to the same
#    criterion directory so one chart script reads both.
(cd peer-benches && CARGO_TARGET_DIR=$PEER_TARGET CRITERION_HOME=$TARGET/criterion \
    cargo bench --bench peers -- $ARGS 2>&1 | tee "$OUT/peers.txt")

# 2b. Issue 18's real workloads: cronlane + heap + peers in one binary, and
#     cronlane + heap on 2 threads (WL_SIZES=10000,100000,1000000 for 1 M).
(cd peer-benches && CARGO_TARGET_DIR=$PEER_TARGET CRITERION_HOME=$TARGET/criterion \
    cargo bench --bench workloads -- $ARGS 2>&1 | tee "$OUT/workloads-peers.txt")
CARGO_TARGET_DIR=$TARGET cargo bench --bench workloads -- $ARGS 2>&1 | tee "$OUT/workloads.txt"

# 3. Memory per task and 4. runner fire lag.
(cd peer-benches && CARGO_TARGET_DIR=$PEER_TARGET cargo run --profile bench --bin memory 2>&1 | tee "$OUT/memory.txt")
(cd peer-benches && CARGO_TARGET_DIR=$PEER_TARGET LAG_OUT=$OUT/lag.txt cargo run --profile bench --bin lag 2>&1 | tee "$OUT/lag-report.txt")

# 5. Charts.
python3 scripts/charts.py --criterion "$TARGET/criterion" --lag "$OUT/lag.txt" --out docs
