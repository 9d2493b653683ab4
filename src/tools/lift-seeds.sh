#!/usr/bin/env bash
# lift-seeds.sh: the lift table over several seeds (README "Proving the lift").
#   bash src/tools/lift-seeds.sh [build-dir] [seeds (5)] [users (5000)] [days (180)]
# The config is src/tools/sim-program.json (models/referral.json priced as the simulator earns,
# README "Pricing the reward as the simulator earns"); LW_LIFT_CONFIG=models/referral.json runs
# the earlier table's config. Runs loopwise-sim --lift once per seed (1..N) and prints each seed's headline ratios, then
# their mean across seeds with a 95% interval (Student t, N-1 degrees of freedom) as name=value
# lines: sim_<ratio>=mean, sim_<ratio>_lo=, sim_<ratio>_hi= (every figure of every arm too,
# sim_<arm>_<figure>), then the proof table (README "Proving the lift") as Markdown: each
# arm's figures as mean [95% interval across seeds], and the issue 11 targets met or not.
source "$(dirname "$0")/seeds-common.sh" "$@"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for s in $(seq 1 "$N"); do
  mkdir -p "$work/$s"
  "$B/src/tools/loopwise-sim" --lift --config "${LW_LIFT_CONFIG:-src/tools/sim-program.json}" --monthly src/tools/monthly-program.json \
    --users "$U" --days "$D" --seed "$s" --workdir "$work/$s" --quiet > "$work/$s.out"
  echo "== seed $s"
  grep -E '^\| [123]|^models promoted' "$work/$s.out"
  grep -E '^sim_[a-z0-9_]+=' "$work/$s.out" | sed "s/^/seed$s /"
done
cat "$work"/*.out | grep -E '^sim_[a-z0-9_]+=' > "$work/all.lines"
awk -F= -v n="$N" "$T_QUANTILE_AWK"'
  { s[$1] += $2; s2[$1] += $2 * $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  END {
    q = tq(n)
    for (i = 1; i <= k; i++) {
      name = order[i]; m = s[name] / n; v = n > 1 ? (s2[name] - n * m * m) / (n - 1) : 0; if (v < 0) v = 0
      h = q * sqrt(v / n)
      printf "%s=%.3f\n%s_lo=%.3f\n%s_hi=%.3f\n", name, m, name, m - h, name, m + h
    }
  }' "$work/all.lines" > "$work/agg.lines"
cat "$work/agg.lines"
# the proof table
awk -F= -v n="$N" -v u="$U" -v d="$D" '
  { v[$1] = $2 }
  END {
    split("prompts_per_1k shares_per_1k converted_per_1k converted_per_prompt retained_per_1k retained_per_prompt cost_per_retained dismissals_per_1k_prompts churn_pct value_per_1k", f, " ")
    split("prompts / 1,000 users|shares / 1,000 users|converted / 1,000 users|converted / prompt|retained / 1,000 users|retained / prompt|incentive cost / retained|dismissals / 1,000 prompts|churn %|value / 1,000 users", t, "|")
    split("monthly rules learning holdout", a, " ")
    split("1. monthly program|2. milestone rules|3. Loopwise learning|3h. its holdout (rules)", an, "|")
    printf "\n%d seeds, %d users, %d days: mean [95%% interval across seeds]\n\n| figure |", n, u, d
    for (j = 1; j <= 4; j++) printf " %s |", an[j]
    printf "\n|---|---|---|---|---|\n"
    for (i = 1; i <= 10; i++) {
      printf "| %s |", t[i]
      for (j = 1; j <= 4; j++) { k = "sim_" a[j] "_" f[i]; printf " %.4g [%.4g, %.4g] |", v[k], v[k "_lo"], v[k "_hi"] }
      printf "\n"
    }
    printf "\ntargets (issue 11):\n"
    r = "sim_value_ratio_vs_rules"; printf "- value / 1,000 users vs rules %.3f [%.3f, %.3f]: target >= 1.25 with the interval above 1: %s\n", v[r], v[r "_lo"], v[r "_hi"], (v[r] >= 1.25 && v[r "_lo"] > 1) ? "met" : "NOT met"
    r = "sim_conversion_ratio_vs_monthly"; printf "- converted / prompt vs monthly %.3f [%.3f, %.3f]: target >= 3: %s\n", v[r], v[r "_lo"], v[r "_hi"], (v[r] >= 3 ? "met" : "NOT met")
    r = "sim_retained_ratio_vs_monthly"; printf "- retained / 1,000 users vs monthly %.3f [%.3f, %.3f]: target >= 2: %s\n", v[r], v[r "_lo"], v[r "_hi"], (v[r] >= 2 ? "met" : "NOT met")
    r = "sim_cost_per_retained_ratio_vs_monthly"; q = "sim_cost_per_retained_ratio_vs_rules"
    printf "- cost / retained vs monthly %.3f [%.3f, %.3f], vs rules %.3f [%.3f, %.3f]: target < 1 for both: %s\n", v[r], v[r "_lo"], v[r "_hi"], v[q], v[q "_lo"], v[q "_hi"], (v[r] < 1 && v[q] < 1) ? "met" : "NOT met"
  }' "$work/agg.lines"
