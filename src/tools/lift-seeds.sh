#!/usr/bin/env bash
# lift-seeds.sh: the lift table over several seeds (README "Proving the lift").
#   bash src/tools/lift-seeds.sh [build-dir] [seeds (5)] [users (5000)] [days (180)]
# Runs loopwise-sim --lift once per seed (1..N) and prints each seed's headline ratios, then
# their mean across seeds with a 95% interval (Student t, N-1 degrees of freedom) as name=value
# lines: sim_<ratio>=mean, sim_<ratio>_lo=, sim_<ratio>_hi=.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build/native}
N=${2:-5}
U=${3:-5000}
D=${4:-180}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for s in $(seq 1 "$N"); do
  mkdir -p "$work/$s"
  "$B/src/tools/loopwise-sim" --lift --config models/referral.json --monthly src/tools/monthly-program.json \
    --users "$U" --days "$D" --seed "$s" --workdir "$work/$s" --quiet > "$work/$s.out"
  echo "== seed $s"
  grep -E '^\| [123]|^models promoted' "$work/$s.out"
  grep -E '^sim_[a-z0-9_]+=' "$work/$s.out" | sed "s/^/seed$s /"
done
cat "$work"/*.out | grep -E '^sim_[a-z0-9_]+=' | awk -F= -v n="$N" '
  { s[$1] += $2; s2[$1] += $2 * $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  END {
    split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262", t, " ")
    q = n >= 2 && n <= 10 ? t[n - 1] : 1.96
    for (i = 1; i <= k; i++) {
      name = order[i]; m = s[name] / n; v = n > 1 ? (s2[name] - n * m * m) / (n - 1) : 0; if (v < 0) v = 0
      h = q * sqrt(v / n)
      printf "%s=%.3f\n%s_lo=%.3f\n%s_hi=%.3f\n", name, m, name, m - h, name, m + h
    }
  }'
