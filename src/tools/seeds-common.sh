# seeds-common.sh: what lift-seeds.sh and ceiling-seeds.sh share; sourced with their arguments.
# Reads [build-dir (build/native)] [seeds (5)] [users (5000)] [days (180)] into B N U D, moves to
# the repository root, and defines T_QUANTILE_AWK: an awk function tq(n), the two-sided 95%
# Student t quantile for a mean of n seeds (n - 1 degrees of freedom; 1.96 beyond 10 seeds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
B=${1:-build/native}
N=${2:-5}
U=${3:-5000}
D=${4:-180}
T_QUANTILE_AWK='
  function tq(n,  t) {
    split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262", t, " ")
    return n >= 2 && n <= 10 ? t[n - 1] : 1.96
  }'
