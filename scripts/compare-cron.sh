#!/usr/bin/env bash
# compare-cron.sh: start lag of `cronlane run` against yacron, in the same run.
#
# JOBS jobs (default 50), each `* * * * *`, run MINUTES minutes (default 4)
# under both daemons at once; each job appends the time its process started
# (`date +%s.%N`) to a file. The lag of a fire is that time minus the minute
# it was due at; the script prints p50/p99/max per daemon over all fires,
# the fire counts (JOBS * MINUTES expected), and each daemon's peak RSS.
# yacron only matches whole minutes, so the jobs are 5-field for both.
#
#   pip install yacron          # once
#   scripts/compare-cron.sh     # JOBS=200 MINUTES=3 scripts/compare-cron.sh
#
# Last run (2026-12-02, 2-core VM shared with other builds, load average
# 6-8; both daemons at once, JOBS=50 MINUTES=3, cronlane release build):
#
# | daemon       | fires (expected 150) | lag p50  | lag p99   | lag max   | peak RSS |
# | cronlane run | 150                  | 58.2 ms  | 116.0 ms  | 118.6 ms  | 7 MB     |
# | yacron 0.19  | 150                  | 694.3 ms | 1077.9 ms | 1079.9 ms | 48 MB    |
#
# The lag is to the start of `date`, the job's second process: it includes
# the daemon's spawn of the shell and the shell's of `date`, for 50 jobs due
# at the same instant on 2 busy cores.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-50}
MINUTES=${MINUTES:-4}
command -v yacron >/dev/null || { echo "yacron not found: pip install yacron" >&2; exit 1; }
cargo build --release -q -p cronlane-cli
BIN=${CARGO_TARGET_DIR:-target}/release/cronlane
DIR=$(mktemp -d)
trap 'kill $CL $YA 2>/dev/null || true; rm -rf "$DIR"' EXIT

{
  for i in $(seq 1 "$JOBS"); do
    echo "# name: j$i"
    echo "* * * * * date +%s.%N >> $DIR/cronlane.times"
  done
} > "$DIR/crontab"
{
  echo "defaults:"
  echo "  shell: /bin/sh"
  echo "jobs:"
  for i in $(seq 1 "$JOBS"); do
    echo "  - name: j$i"
    echo "    command: date +%s.%N >> $DIR/yacron.times"
    echo "    schedule: \"* * * * *\""
    echo "    captureStdout: false"
    echo "    captureStderr: false"
  done
} > "$DIR/yacron.yaml"

"$BIN" run --split-logs "$DIR/crontab" >/dev/null 2>"$DIR/cronlane.log" & CL=$!
yacron -c "$DIR/yacron.yaml" >/dev/null 2>"$DIR/yacron.log" & YA=$!
# Start counting from the next full minute; stop 20 s after the last one.
now=$(date +%s)
first=$(( (now / 60 + 1) * 60 ))
end=$(( first + (MINUTES - 1) * 60 + 20 ))
echo "cronlane pid $CL, yacron pid $YA; $JOBS jobs; fires at $(date -u -d @$first +%H:%M) .. +$((MINUTES - 1)) min; done at $(date -u -d @$end +%H:%M:%S)" >&2
peak() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
sleep $(( end - $(date +%s) ))
CL_RSS=$(peak $CL); YA_RSS=$(peak $YA)
kill -TERM $CL $YA; wait $CL $YA 2>/dev/null || true

python3 - "$DIR" "$first" "$MINUTES" "$JOBS" "$CL_RSS" "$YA_RSS" <<'PY'
import sys, math
d, first, minutes, jobs, cl_rss, ya_rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
def pct(xs, p):
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]
print(f"| daemon | fires (expected {jobs * minutes}) | lag p50 | lag p99 | lag max | peak RSS |")
print("| --- | --- | --- | --- | --- | --- |")
for name, rss in (("cronlane run", cl_rss), ("yacron", ya_rss)):
    f = "cronlane" if name.startswith("cronlane") else "yacron"
    try:
        ts = [float(l) for l in open(f"{d}/{f}.times") if l.strip()]
    except FileNotFoundError:
        ts = []
    lags = sorted((t - (int(t) // 60) * 60) * 1000 for t in ts if first <= int(t) // 60 * 60 < first + minutes * 60)
    if not lags:
        print(f"| {name} | 0 | - | - | - | {rss} kB |")
        continue
    print(f"| {name} | {len(lags)} | {pct(lags, 50):.1f} ms | {pct(lags, 99):.1f} ms | {lags[-1]:.1f} ms | {int(rss) // 1024} MB |")
PY
