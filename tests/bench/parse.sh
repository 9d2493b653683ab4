#!/usr/bin/env bash
# parse.sh: instructions per batch, counted by callgrind (repeatable on a loaded machine, unlike
# time): the batch reader (lw_batch_parse) on the benchmark's request body (tests/bench/ingest.lua's:
# 5 records), beside the cJSON-tree validator it replaced (tests/ingest/batch_cjson.c), and the
# SQLite writer (sq_write) per batch in groups of 64 (tests/ingest/bench_store).
# Each count is (run with 3N - run with N) / 2N, so start-up is left out.
# Prints parse_instructions_per_batch=, parse_oracle_instructions_per_batch=,
# store_write_instructions_per_batch=. Needs valgrind (Debian's; skipped without it).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${LW_NATIVE_DIR:-build/native}
command -v valgrind >/dev/null || { echo "parse.sh: valgrind missing, skipped" >&2; exit 0; }
[ -x "$dir/tests/ingest/bench_parse" ] || { echo "parse.sh: $dir/tests/ingest/bench_parse missing; run npm run build" >&2; exit 1; }
work=$(mktemp -d /tmp/lw-parse-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

ir() { # callgrind's total instructions of a command
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per() { # reader N
  local a b
  a=$(ir "$dir/tests/ingest/bench_parse" "$1" 1000)
  b=$(ir "$dir/tests/ingest/bench_parse" "$1" 3000)
  echo $(( (b - a) / 2000 ))
}
echo "parse_instructions_per_batch=$(per new)"
echo "parse_oracle_instructions_per_batch=$(per old)"
valgrind --tool=callgrind --toggle-collect=sq_write --callgrind-out-file="$work/w.out" \
  "$dir/tests/ingest/bench_store" "$work/w.db" 60 64 >/dev/null 2>&1
w=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$work/w.out")
echo "store_write_instructions_per_batch=$(( w / (60 * 64) ))"
