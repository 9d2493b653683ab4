#!/usr/bin/env bash
# rollups.sh: the writer's cost per batch before and after the writer-kept rollups (store schema
# 9, issue 15): tests/ingest/bench_store (group commits of 64 batches shaped like
# tests/cases/ingest/valid-batch.json, each durable) built from the commit before the rollups
# (09e9606, exported with git archive into build/bench-before and built there once) and from
# this tree, run alternately three times each on fresh files; prints the medians as
#   writer_us_per_batch_before=  writer_us_per_batch_after=  (wall-clock microseconds per batch,
#   fsync included) and writer_cost_ratio= (after / before); then, under callgrind (valgrind,
#   counting only inside lw_store_write, so fsync waits and the machine's load do not count),
#   writer_instructions_per_batch_before= and _after= and writer_instructions_ratio=.
# LW_BENCH_BEFORE_REV names another "before" commit (e.g. the main this tree branched from, to
# measure one schema step alone), built in build/bench-before-<rev>.
set -euo pipefail
cd "$(dirname "$0")/../.."
before_rev=${LW_BENCH_BEFORE_REV:-09e9606}
after_bin=${LW_NATIVE_DIR:-build/native}/tests/ingest/bench_store
before_dir=build/bench-before${LW_BENCH_BEFORE_REV:+-$before_rev}
before_bin=$before_dir/build/tests/ingest/bench_store
[ -x "$after_bin" ] || { echo "rollups.sh: $after_bin missing; run npm run build" >&2; exit 1; }
if [ ! -x "$before_bin" ]; then
  rm -rf "$before_dir"
  mkdir -p "$before_dir/src/build"
  git archive "$before_rev" | tar -x -C "$before_dir/src"
  ln -s "$PWD/build/third_party" "$before_dir/src/build/third_party"
  cmake -S "$before_dir/src" -B "$before_dir/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$before_dir/build" -j "$(nproc)" --target bench_store >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # bin -> us per batch
  rm -f "$tmp"/s.db*
  "$1" "$tmp/s.db" 300 64 | sed -n 's/^store_us_per_batch=//p'
}
b=() a=()
for i in 1 2 3; do
  b+=("$(run "$before_bin")")
  a+=("$(run "$after_bin")")
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
mb=$(median "${b[@]}") ma=$(median "${a[@]}")
echo "writer_us_per_batch_before=$mb"
echo "writer_us_per_batch_after=$ma"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "writer_cost_ratio=%.2f\n", a / b }'
if command -v valgrind >/dev/null; then
  ir() { # bin -> instructions per batch inside lw_store_write (50 groups of 64 batches)
    rm -f "$tmp"/s.db* "$tmp"/cg.out
    valgrind --tool=callgrind --toggle-collect=lw_store_write --callgrind-out-file="$tmp/cg.out" \
      "$1" "$tmp/s.db" 50 64 >/dev/null 2>&1
    awk '/^(summary|totals):/ { print int($2 / 3200); exit }' "$tmp/cg.out"
  }
  ib=$(ir "$before_bin") ia=$(ir "$after_bin")
  echo "writer_instructions_per_batch_before=$ib"
  echo "writer_instructions_per_batch_after=$ia"
  awk -v a="$ia" -v b="$ib" 'BEGIN { printf "writer_instructions_ratio=%.2f\n", a / b }'
fi
