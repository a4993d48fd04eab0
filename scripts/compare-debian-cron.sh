#!/usr/bin/env bash
# compare-debian-cron.sh: `cronlane run` against Debian's cron (3.0pl1) and
# yacron, in the same run: start lag, memory with 1,000 jobs. The DST cases
# are scripts/compare-cron-dst.sh. Needs root (Debian's cron reads
# /etc/cron.d; the script writes one file there and removes it).
#
#   apt-get install -y cron && pip install yacron     # once
#   JOBS=100 MINUTES=3 scripts/compare-debian-cron.sh
#
# Lag: JOBS jobs `* * * * *` per daemon, all three daemons at once, each job
# appends `date +%s.%N` to a file; lag = that time minus the minute it was
# due at (so it includes the spawn of the shell and of `date`; `%` is escaped
# for Debian cron, where it means a newline). Memory: each
# daemon alone with 1,000 jobs `0 0 1 1 *` (none fires), VmRSS after 10 s.
# Last run (2026-12-02, 2 shared vCPUs, busy): docs/cli.md, "Compared".
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-100}
MINUTES=${MINUTES:-3}
command -v yacron >/dev/null || { echo "yacron not found: pip install yacron" >&2; exit 1; }
command -v cron >/dev/null || { echo "cron not found: apt-get install -y cron" >&2; exit 1; }
if pgrep -x cron >/dev/null; then echo "a cron daemon already runs; stop it first" >&2; exit 1; fi
cargo build --release -q -p cronlane-cli
BIN=${CARGO_TARGET_DIR:-target}/release/cronlane
DIR=$(mktemp -d)
ETC=/etc/cron.d/cronlane-compare
CL= YA= DC=
cleanup() { kill $CL $YA $DC 2>/dev/null || true; rm -f "$ETC" /run/crond.pid; rm -rf "$DIR"; }
trap cleanup EXIT

crontabs() { # $1 = schedule, $2 = count, $3 = tag
  : > "$DIR/$3.crontab"; : > "$DIR/$3.etc"
  printf 'defaults:\n  shell: /bin/sh\njobs:\n' > "$DIR/$3.yaml"
  for i in $(seq 1 "$2"); do
    printf '# name: j%s\n%s date +%%s.%%N >> %s/cronlane.times\n' "$i" "$1" "$DIR" >> "$DIR/$3.crontab"
    printf '%s root date +\\%%s.\\%%N >> %s/debian.times\n' "$1" "$DIR" >> "$DIR/$3.etc"
    printf '  - name: j%s\n    command: date +%%s.%%N >> %s/yacron.times\n    schedule: "%s"\n    captureStdout: false\n    captureStderr: false\n' \
      "$i" "$DIR" "$1" >> "$DIR/$3.yaml"
  done
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
peak() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# --- memory, 1,000 jobs, one daemon at a time
crontabs "0 0 1 1 *" 1000 mem
"$BIN" run --split-logs "$DIR/mem.crontab" >/dev/null 2>&1 & CL=$!; sleep 10; MEM_CL=$(rss $CL); kill $CL; wait $CL 2>/dev/null || true; CL=
"$BIN" run --split-logs --state "$DIR/mem.db" "$DIR/mem.crontab" >/dev/null 2>&1 & CL=$!; sleep 10; MEM_CLS=$(rss $CL); kill $CL; wait $CL 2>/dev/null || true; CL=
yacron -c "$DIR/mem.yaml" >/dev/null 2>&1 & YA=$!; sleep 10; MEM_YA=$(rss $YA); kill $YA; wait $YA 2>/dev/null || true; YA=
install -m 644 "$DIR/mem.etc" "$ETC"; cron -f -L 0 & DC=$!; sleep 10; MEM_DC=$(rss $DC); kill $DC; wait $DC 2>/dev/null || true; DC=; rm -f "$ETC" /run/crond.pid
echo "memory with 1000 jobs (VmRSS): cronlane $MEM_CL kB, cronlane --state $MEM_CLS kB, yacron $MEM_YA kB, Debian cron $MEM_DC kB" >&2

# --- start lag, all three at once
rm -f "$DIR"/*.times
crontabs "* * * * *" "$JOBS" lag
install -m 644 "$DIR/lag.etc" "$ETC"
"$BIN" run --split-logs "$DIR/lag.crontab" >/dev/null 2>"$DIR/cronlane.log" & CL=$!
yacron -c "$DIR/lag.yaml" >/dev/null 2>"$DIR/yacron.log" & YA=$!
cron -f -L 0 2>"$DIR/debian.log" & DC=$!
now=$(date +%s)
first=$(( (now / 60 + 1) * 60 ))
end=$(( first + (MINUTES - 1) * 60 + 20 ))
echo "lag: $JOBS jobs per daemon; fires $(date -u -d @$first +%H:%M) .. +$((MINUTES - 1)) min; done at $(date -u -d @$end +%H:%M:%S)" >&2
sleep $(( end - $(date +%s) ))
CL_RSS=$(peak $CL); YA_RSS=$(peak $YA); DC_RSS=$(peak $DC)
kill -TERM $CL $YA $DC; wait $CL $YA $DC 2>/dev/null || true; CL= YA= DC=

python3 - "$DIR" "$first" "$MINUTES" "$JOBS" "$CL_RSS" "$YA_RSS" "$DC_RSS" "$MEM_CL" "$MEM_YA" "$MEM_DC" "$MEM_CLS" <<'PY'
import sys, math
d, first, minutes, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
peaks = dict(zip(("cronlane", "yacron", "debian"), sys.argv[5:8]))
mem = dict(zip(("cronlane", "yacron", "debian"), sys.argv[8:11]))
mem_state = sys.argv[11]
def pct(xs, p):
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]
print(f"| daemon | fires (expected {jobs * minutes}) | lag p50 | lag p99 | lag max | peak RSS, {jobs} jobs firing | RSS, 1,000 idle jobs |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for key, name in (("cronlane", "cronlane run"), ("yacron", "yacron 0.19"), ("debian", "Debian cron 3.0pl1")):
    try:
        ts = [float(l) for l in open(f"{d}/{key}.times") if l.strip()]
    except FileNotFoundError:
        ts = []
    lags = sorted((t - (int(t) // 60) * 60) * 1000 for t in ts if first <= int(t) // 60 * 60 < first + minutes * 60)
    m = f"{int(mem[key]) / 1024:.1f} MB"
    if key == "cronlane":
        m += f" ({int(mem_state) / 1024:.1f} MB with --state)"
    if not lags:
        print(f"| {name} | 0 | - | - | - | {int(peaks[key]) / 1024:.1f} MB | {m} |")
        continue
    print(f"| {name} | {len(lags)} | {pct(lags, 50):.1f} ms | {pct(lags, 99):.1f} ms | {lags[-1]:.1f} ms | {int(peaks[key]) / 1024:.1f} MB | {m} |")
PY
