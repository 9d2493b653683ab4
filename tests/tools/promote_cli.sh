#!/usr/bin/env bash
# The promotion step as operators run it: a first model is promoted; retraining on the same
# data leaves current.lwm byte for byte (so the served ETag does not change); retraining on new
# data that does not make the model worse replaces it and keeps the old one as previous.lwm.
#   promote_cli.sh TOOLS_DIR TESTS_TOOLS_DIR
set -euo pipefail
T=$1 G=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"$G/lw-bandit-vw" 20000 1 > "$d/a.vw"
"$G/lw-bandit-vw" 20000 2 > "$d/b.vw"
train() { "$T/loopwise-train" --data "$1" --actions a0,a1,not_now --personas 0 --quiet --promote-into "$d/site"; }
train "$d/a.vw" | grep -q 'promoted=yes reason="not worse than the logging policy'
before=$(cksum < "$d/site/current.lwm")
train "$d/a.vw" | grep -q 'promoted=no reason="same model as the current one"'
[ "$(cksum < "$d/site/current.lwm")" = "$before" ] || { echo "current.lwm changed on identical data"; exit 1; }
[ ! -e "$d/site/candidate.lwm" ] || { echo "a candidate was left behind"; exit 1; }
out=$(train "$d/b.vw")
echo "$out" | grep -E '^(compare|promoted)'
if echo "$out" | grep -q 'promoted=yes'; then
  [ "$(cksum < "$d/site/current.lwm")" != "$before" ] || { echo "promoted but current.lwm unchanged"; exit 1; }
  [ -e "$d/site/previous.lwm" ] || { echo "previous.lwm missing"; exit 1; }
fi
[ "$(wc -l < "$d/site/promotions.log")" -eq 3 ] || { echo "promotions.log should have 3 lines"; exit 1; }
echo ok
