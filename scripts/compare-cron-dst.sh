#!/usr/bin/env bash
# compare-cron-dst.sh: the daylight-saving cases of docs/cron.md under
# `cronlane run`, yacron and Debian's cron, on a faked clock: each daemon runs
# under `faketime -f "@START x60"` (libfaketime: the clock starts at START in
# Europe/Berlin and runs 60 times faster, sleeps shortened to match), for
# 130 s of real time = 130 min of faked time across each transition
# (cronlane's waits are futexes, which libfaketime does not speed up, so its
# counts here are 0: see docs/cli.md for how it was checked with --now):
#
#   spring: 2025-03-30 01:59:40 CET,  then 02:00 CET -> 03:00 CEST
#   fall:   2025-10-26 01:59:40 CEST, then 03:00 CEST -> 02:00 CET
#
# Jobs: F `30 2 * * *` (fixed time), H `30 * * * *` (hourly). Each fire
# appends its letter to a file; the script prints the counts. docs/cron.md
# (cronlane's rules): spring F=1 (at 03:00 CEST, the first instant after the
# gap), H=2 (03:30, 04:30; 02:30 does not exist); fall F=1 (first pass only), H=2
# (02:30 CEST and 02:30 CET). Needs root (Debian's cron reads /etc/cron.d).
#
#   apt-get install -y cron faketime && pip install yacron
#   scripts/compare-cron-dst.sh
# Last run (2026-12-02, 2 shared vCPUs, busy): docs/cli.md, "Compared".
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p cronlane-cli
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/cronlane")
DIR=$(mktemp -d)
ETC=/etc/cron.d/cronlane-dst
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f "$ETC" /run/crond.pid; rm -rf "$DIR"' EXIT
REAL=${REAL:-130}
export TZ=Europe/Berlin

for case in spring fall; do
  case $case in
    spring) START="2025-03-30 01:59:40" ;;
    fall) START="2025-10-26 01:59:40" ;;
  esac
  for d in cronlane yacron debian; do : > "$DIR/$case.$d"; done
  printf 'CRON_TZ=Europe/Berlin\n# name: F\n30 2 * * * echo F >> %s\n# name: H\n30 * * * * echo H >> %s\n' "$DIR/$case.cronlane" "$DIR/$case.cronlane" > "$DIR/$case.crontab"
  printf 'defaults:\n  shell: /bin/sh\n  utc: false\njobs:\n' > "$DIR/$case.yaml"
  for j in "F|30 2 * * *" "H|30 * * * *"; do
    printf '  - name: %s\n    command: echo %s >> %s\n    schedule: "%s"\n    captureStdout: false\n    captureStderr: false\n' \
      "${j%%|*}" "${j%%|*}" "$DIR/$case.yacron" "${j#*|}" >> "$DIR/$case.yaml"
  done
  printf '30 2 * * * root echo F >> %s\n30 * * * * root echo H >> %s\n' "$DIR/$case.debian" "$DIR/$case.debian" > "$DIR/$case.etc"
  install -m 644 "$DIR/$case.etc" "$ETC"
  PIDS=()
  faketime -f "@$START x60" "$BIN" run --json "$DIR/$case.crontab" > "$DIR/$case.cronlane.log" 2>&1 & PIDS+=($!)
  faketime -f "@$START x60" yacron -c "$DIR/$case.yaml" > "$DIR/$case.yacron.log" 2>&1 & PIDS+=($!)
  faketime -f "@$START x60" cron -f -L 0 > "$DIR/$case.debian.log" 2>&1 & PIDS+=($!)
  sleep "$REAL"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$ETC" /run/crond.pid
  for d in cronlane yacron debian; do
    f=$(grep -c F "$DIR/$case.$d" || true); h=$(grep -c H "$DIR/$case.$d" || true)
    echo "$case $d F=$f H=$h"
  done
  [ -n "${KEEP:-}" ] && cp "$DIR"/$case.*.log "$KEEP"/ 2>/dev/null || true
done
