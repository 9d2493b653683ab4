#!/usr/bin/env bash
# ceiling-seeds.sh: what any policy could reach on the simulator (README "What learning could
# reach"), against the milestone rules on the same people.
#   bash src/tools/ceiling-seeds.sh [build-dir] [seeds (5)] [users (5000)] [days (180)] [model.lwm ...]
# For seeds 1..N runs loopwise-sim with the proof config (src/tools/sim-program.json, or
# $LW_LIFT_CONFIG): --policy rules; --policy oracle (the rules' moments, the variant and first
# channel the simulator's formulas value most for each user: a ceiling, not a policy anyone can
# run); the oracle with --habit-channels (the variant alone: the prompt's channel order moves
# nobody); and each model given, in every engine from day 0 (--model), with and without
# --habit-channels. Prints each arm's value, converted referees per prompt and cost per retained
# referee per seed, then each arm's ratio to the rules as mean [95% interval across seeds]
# (Student t) as name=value lines: ceiling_<arm>_value_ratio_vs_rules= and so on.
# LW_FIRST_SEED (1) moves the seeds (a model trained on seed 1's store is out of sample on 11..15).
source "$(dirname "$0")/seeds-common.sh" "$@"
shift $(($# < 4 ? $# : 4))
CFG=${LW_LIFT_CONFIG:-src/tools/sim-program.json}
arms=("rules|--policy rules" "oracle|--policy oracle" "oracle_variant|--policy oracle --habit-channels")
k=0
for m in "$@"; do
  k=$((k + 1))
  arms+=("model$k|--policy rules --model $m" "model${k}_variant|--policy rules --model $m --habit-channels")
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
S0=${LW_FIRST_SEED:-1}
for s in $(seq "$S0" $((S0 + N - 1))); do
  for a in "${arms[@]}"; do
    name=${a%%|*}
    # shellcheck disable=SC2086
    "$B/src/tools/loopwise-sim" ${a#*|} --config "$CFG" --users "$U" --days "$D" --seed "$s" --quiet |
      grep -E '^sim_[a-z]+_(value_per_1k|converted_per_prompt|retained_per_1k|cost_per_retained)=' |
      sed -E "s/^sim_[a-z]+_/$s $name /; s/=/ /" >> "$out"
  done
done
[ "$k" -gt 0 ] && for i in $(seq 1 "$k"); do echo "model$i: ${!i}"; done
awk -v n="$N" -v s0="$S0" "$T_QUANTILE_AWK"'
  { v[$1, $2, $3] = $4; if (!(($2) in seen)) { seen[$2] = 1; arm[++na] = $2 } }
  END {
    q = tq(n)
    split("value_per_1k converted_per_prompt retained_per_1k cost_per_retained", f, " ")
    for (s = s0; s < s0 + n; s++) {
      printf "seed %d:", s
      for (i = 1; i <= na; i++) printf " %s value %.0f conv/prompt %.4f cost/ret %.2f;", arm[i], v[s, arm[i], "value_per_1k"], v[s, arm[i], "converted_per_prompt"], v[s, arm[i], "cost_per_retained"]
      printf "\n"
    }
    for (i = 2; i <= na; i++)
      for (j = 1; j <= 4; j++) {
        sum = 0; sum2 = 0
        for (s = s0; s < s0 + n; s++) { r = v[s, arm[i], f[j]] / v[s, "rules", f[j]]; sum += r; sum2 += r * r }
        m = sum / n; var = n > 1 ? (sum2 - n * m * m) / (n - 1) : 0; if (var < 0) var = 0; h = q * sqrt(var / n)
        printf "ceiling_%s_%s_ratio_vs_rules=%.3f [%.3f, %.3f]\n", arm[i], f[j], m, m - h, m + h
      }
  }' "$out"
