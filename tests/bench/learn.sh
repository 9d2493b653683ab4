#!/usr/bin/env bash
# learn.sh: the learning loop's benchmark lines (run by npm run bench after the build).
#   train_lines_per_s, eval_lines_per_s, train_peak_rss_mb on a 1,000,000-line VW file
#   (the synthetic bandit of tests/tools, 40 features a line, about what the engine logs),
#   then the lift table's headline figures from the simulator over 5 seeds (README "Proving the
#   lift"): sim_*_ratio_* (sim_value_ratio_vs_rules, sim_conversion_ratio_vs_monthly,
#   sim_retained_ratio_vs_monthly, sim_cost_per_retained_ratio_vs_monthly, ...) and every arm's
#   figure (sim_<arm>_<figure>) as the mean across seeds, with _lo/_hi the 95% interval across seeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${LW_NATIVE_DIR:-build/native}
T=$B/src/tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lines=${LW_BENCH_LINES:-1000000}
"$B/tests/tools/lw-bandit-vw" "$lines" 1 38 > "$work/bench.vw"

now() { date +%s.%N; }
t0=$(now)
"$T/loopwise-train" --data "$work/bench.vw" --actions a0,a1,not_now --quiet --out "$work/bench.lwm" > "$work/train.out"
t1=$(now)
"$T/loopwise-eval" --data "$work/bench.vw" --actions a0,a1,not_now --quiet \
  --policy "$work/bench.lwm" --policy uniform > "$work/eval.out"
t2=$(now)
awk -v n="$lines" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "train_lines_per_s=%.0f\neval_lines_per_s=%.0f\n", n / (b - a), n / (c - b) }'
sed -n 's/^peak_rss_mb=/train_peak_rss_mb=/p' "$work/train.out"
sed -n 's/^peak_rss_mb=/eval_peak_rss_mb=/p' "$work/eval.out"

# the lift table's headline ratios over 5 seeds: their mean across seeds and a 95% interval
bash src/tools/lift-seeds.sh "$B" "${LW_BENCH_SEEDS:-5}" > "$work/lift.out"
grep -E '^sim_[a-z0-9_]+=' "$work/lift.out"
