#!/usr/bin/env bash
# The promotion step as operators run it: a first model better than the rules and the best
# single action is promoted; retraining on the same
# data leaves current.lwm byte for byte (so the served ETag does not change); retraining on new
# data that does not make the model worse replaces it and keeps the old one as previous.lwm; a
# worse candidate leaves current.lwm and previous.lwm as they were.
#   promote_cli.sh TOOLS_DIR TESTS_TOOLS_DIR
set -euo pipefail
T=$1 G=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"$G/lw-bandit-vw" 20000 1 > "$d/a.vw"
"$G/lw-bandit-vw" 20000 2 > "$d/b.vw"
train() { local f=$1; shift; "$T/loopwise-train" --data "$f" --actions a0,a1,not_now --personas 0 --quiet --promote-into "$d/site" "$@"; }
grep -q 'promoted=yes reason="not worse than always:a[01] beyond the margin' <<<"$(train "$d/a.vw")"
before=$(cksum < "$d/site/current.lwm")
grep -q 'promoted=no reason="same model as the current one"' <<<"$(train "$d/a.vw")"
[ "$(cksum < "$d/site/current.lwm")" = "$before" ] || { echo "current.lwm changed on identical data"; exit 1; }
[ ! -e "$d/site/candidate.lwm" ] || { echo "a candidate was left behind"; exit 1; }
# Each promotion decision is checked whichever way it goes: a promotion replaces current.lwm and
# keeps the old one as previous.lwm; a rejection leaves both as they were.
check_decision() { # OUTPUT CKSUM_OF_CURRENT_BEFORE
  local out=$1 before=$2 last
  echo "$out" | grep -E '^(compare|promoted)'
  last=$(tail -n 1 "$d/site/promotions.log")
  [ ! -e "$d/site/candidate.lwm" ] || { echo "a candidate was left behind"; exit 1; }
  if grep -q '^promoted=yes' <<<"$out"; then
    grep -Eq 'promoted=yes reason="not worse than [^"]+ beyond the margin" etag="m' <<<"$out" || { echo "promotion without its reason and tag"; exit 1; }
    [ "$(cksum < "$d/site/current.lwm")" != "$before" ] || { echo "promoted but current.lwm unchanged"; exit 1; }
    [ "$(cksum < "$d/site/previous.lwm")" = "$before" ] || { echo "previous.lwm is not the model it replaced"; exit 1; }
    grep -q '"promoted":true' <<<"$last" || { echo "promotions.log does not say promoted: $last"; exit 1; }
  elif grep -q '^promoted=no' <<<"$out"; then
    grep -Eq 'promoted=no reason="the difference from [^"]+ is not above' <<<"$out" || { echo "a rejection without its reason"; exit 1; }
    # the rule: the interval's lower end is not above the threshold (-margin x the baseline's value)
    echo "$out" | grep -E '^compare baseline=' | sed -E 's/.*\[(-?[0-9.]+), .* threshold=(-?[0-9.]+).*/\1 \2/' |
      awk '{ exit !($1 <= $2) }' || { echo "rejected although the lower end is above the threshold"; exit 1; }
    [ "$(cksum < "$d/site/current.lwm")" = "$before" ] || { echo "rejected but current.lwm changed"; exit 1; }
    grep -q '"promoted":false' <<<"$last" || { echo "promotions.log does not say rejected: $last"; exit 1; }
  else
    echo "no promotion decision printed"; exit 1
  fi
}
check_decision "$(train "$d/b.vw")" "$before"
# A candidate that explores uniformly (no action ever has "enough data") against a fitted live
# model on 20,000 new records: worse beyond the interval, so the rejection branch always runs.
"$G/lw-bandit-vw" 20000 3 > "$d/c.vw"
before=$(cksum < "$d/site/current.lwm")
prev=$(cksum < "$d/site/previous.lwm" 2>/dev/null || echo none)
out=$(train "$d/c.vw" --min-ess 1000000000)
grep -q '^promoted=no' <<<"$out" || { echo "a uniform candidate was promoted over a fitted model"; echo "$out"; exit 1; }
check_decision "$out" "$before"
[ "$(cksum < "$d/site/previous.lwm" 2>/dev/null || echo none)" = "$prev" ] || { echo "rejected but previous.lwm changed"; exit 1; }
[ "$(wc -l < "$d/site/promotions.log")" -eq 4 ] || { echo "promotions.log should have 4 lines"; exit 1; }
# A models folder whose parents do not exist yet is made whole (it used to fail with
# "candidate.lwm.tmpN: No such file or directory"); one that cannot be made says which and why.
out=$("$T/loopwise-train" --data "$d/a.vw" --actions a0,a1,not_now --personas 0 --quiet --promote-into "$d/models/sites/default")
grep -q '^promoted=yes' <<<"$out" || { echo "a fresh nested models folder: $out"; exit 1; }
[ -s "$d/models/sites/default/current.lwm" ] || { echo "no current.lwm in the nested folder"; exit 1; }
: > "$d/file"
if err=$("$T/loopwise-train" --data "$d/a.vw" --actions a0,a1,not_now --personas 0 --quiet --promote-into "$d/file/site" 2>&1); then
  echo "promoting under a file succeeded"; exit 1
fi
grep -q "loopwise-train: cannot make the folder $d/file/site: Not a directory" <<<"$err" || { echo "unclear error: $err"; exit 1; }
# Rules that mostly show each context's worst action, where a0 is best everywhere: a candidate
# that knows nothing (--min-ess: no action has enough data, so it explores uniformly) is refused
# against always:a0, and with no model deciding, always:a0, exploring as configured, goes live
# once it beats the rules on the held-out decisions (promoted=single); the next refused candidate
# leaves that action live.
"$G/lw-bandit-vw" 20000 4 0 one-best > "$d/one.vw"
"$G/lw-bandit-vw" 20000 5 0 one-best > "$d/one2.vw"
one() { local f=$1; shift; "$T/loopwise-train" --data "$f" --actions a0,a1,not_now --personas 0 --quiet --min-ess 1000000000 --promote-into "$d/one" "$@"; }
out=$(one "$d/one.vw")
grep -Eq '^promoted=single reason="the difference from always:a0 is not above [^"]*" etag="m' <<<"$out" || { echo "no single action went live: $out"; exit 1; }
grep -Eq '^single n=[0-9]+ rules=[0-9.]+ single=a0:[0-9.]+ diff=[0-9.]+ \[[0-9.]+, ' <<<"$out" || { echo "the single action's comparison with the rules is missing or not above 0: $out"; exit 1; }
grep -q '^single: a0 went live, with m[0-9]*.s channel rankings: always a0, exploring as configured: better than rules' <<<"$out" || { echo "$out"; exit 1; }
"$T/loopwise-model" show "$d/one/current.lwm" | grep -q '"single_action":"a0"' || { echo "current.lwm does not say single_action"; exit 1; }
grep -q '"promoted":false,.*"channels_only":false,"single_action":"a0"}' "$d/one/promotions.log" || { echo "promotions.log: $(cat "$d/one/promotions.log")"; exit 1; }
# The next refused candidate (new data): the single action stays. These logs carry no channels,
# so the refreshed model would be the live one (same decisions, no rankings): current.lwm stays
# byte for byte, and its ETag with it.
before=$(cksum < "$d/one/current.lwm")
out=$(one "$d/one2.vw")
grep -q '^single: the live model already decides and ranks the channels so; kept$' <<<"$out" || { echo "$out"; exit 1; }
grep -q '^promoted=no reason="the difference from [^"]*" etag=(unchanged)$' <<<"$out" || { echo "$out"; exit 1; }
[ "$(cksum < "$d/one/current.lwm")" = "$before" ] || { echo "current.lwm changed for the same single-action model"; exit 1; }
"$T/loopwise-model" show "$d/one/current.lwm" | grep -q '"single_action":"a0"' || { echo "the single action did not stay"; exit 1; }
echo ok
