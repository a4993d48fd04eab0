#!/usr/bin/env bash
# Compares the repository's copy of the cron corpus with the team's shared
# one, when ../shared is beside the checkout (no test reads outside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=../shared/cron-corpus
[ -d "$shared" ] || { echo "no $shared: nothing to compare"; exit 0; }
for f in public.jsonl README.md; do
  cmp "tests/data/cron-corpus/$f" "$shared/$f" && echo "tests/data/cron-corpus/$f matches"
done
