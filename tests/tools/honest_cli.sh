#!/usr/bin/env bash
# What the learning CLIs say about their input and their estimates (issue 10's found items, at
# the command line): every CLI answers --help; empty input is an error; costs that look like
# {0 good, 1 bad}, feature values the fixed point rounds to 0, an estimate on the records the
# model was trained on, an in-sample estimate, a policy on an action with no logged data and a
# tiny effective sample size are each said, never silently reported as a held-out figure.
#   honest_cli.sh TOOLS_DIR TESTS_TOOLS_DIR
set -uo pipefail
T=$1 G=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for tool in loopwise-train loopwise-eval loopwise-sim loopwise-model; do
  out=$("$T/$tool" --help 2>/dev/null) || fail "$tool --help exits $?"
  grep -q '^usage: ' <<<"$out" || fail "$tool --help prints no usage on stdout: $out"
done

: > "$d/empty.vw"
out=$("$T/loopwise-train" --data "$d/empty.vw" --actions a,b --quiet --out "$d/never.lwm" 2>&1) && fail "train on an empty file exits 0: $out"
grep -q 'no logged decisions' <<<"$out" || fail "train on an empty file does not say so: $out"
out=$("$T/loopwise-eval" --data "$d/empty.vw" --actions a,b --quiet --policy uniform 2>&1) && fail "eval on an empty file exits 0: $out"
grep -q 'no logged decisions' <<<"$out" || fail "eval on an empty file does not say so: $out"

# {0 good, 1 bad}: every cost 0 or 1
for i in $(seq 1 300); do echo "$((i % 2 + 1)):$((i % 3 == 0)):0.5 | bias f$((i % 5))"; done > "$d/costs01.vw"
out=$("$T/loopwise-train" --data "$d/costs01.vw" --actions a,b --quiet --out "$d/c.lwm") || fail "train exits $?: $out"
grep -q '^warning: every cost is 0 or 1' <<<"$out" || fail "no warning for {0,1} costs: $out"

# values below 1/512 become 0 in the fixed point
for i in $(seq 1 300); do echo "$((i % 2 + 1)):-$((i % 4 == 0)):0.5 | bias small:0.001"; done > "$d/tiny.vw"
out=$("$T/loopwise-train" --data "$d/tiny.vw" --actions a,b --quiet --out "$d/t.lwm") || fail "train exits $?: $out"
grep -q '^warning: 300 non-zero feature values were read as 0' <<<"$out" || fail "no warning for values below 1/512: $out"

# a model evaluated on the records it was trained on, and --holdout-mod 0
"$G/lw-bandit-vw" 4000 5 > "$d/a.vw"
"$G/lw-bandit-vw" 4000 6 > "$d/b.vw"
out=$("$T/loopwise-train" --data "$d/a.vw" --actions a0,a1,not_now --personas 0 --quiet --out "$d/m.lwm") || fail "train: $out"
grep -q '^held-out estimate' <<<"$out" || fail "no held-out estimate: $out"
out=$("$T/loopwise-eval" --data "$d/a.vw" --actions a0,a1,not_now --quiet --policy "$d/m.lwm") || fail "eval: $out"
grep -Eq "^warning: .*m.lwm: [0-9]+ of the 4000 evaluated records are exactly the records the model was trained on" <<<"$out" ||
  fail "no in-sample warning evaluating on the training file: $out"
out=$("$T/loopwise-eval" --data "$d/a.vw" --actions a0,a1,not_now --quiet --holdout-only 10 --policy "$d/m.lwm") || fail "eval: $out"
grep -q 'trained on' <<<"$out" && fail "the held-out records are not ones it was trained on: $out"
out=$("$T/loopwise-eval" --data "$d/b.vw" --actions a0,a1,not_now --quiet --policy "$d/m.lwm") || fail "eval: $out"
grep -q 'trained on' <<<"$out" && fail "a warning on new data: $out"
out=$("$T/loopwise-train" --data "$d/a.vw" --actions a0,a1,not_now --personas 0 --holdout-mod 0 --quiet --out "$d/m0.lwm") || fail "train: $out"
grep -q 'held-out' <<<"$out" && fail "--holdout-mod 0 labelled held-out: $out"
grep -q '^in-sample estimate' <<<"$out" || fail "--holdout-mod 0 not labelled in-sample: $out"

# an action never logged: DR credits it nothing and says so; its interval is not zero-width
for i in $(seq 1 400); do echo "$((i % 2 + 1)):-$((i % 3 == 0)):0.5 | bias f$((i % 7))"; done > "$d/two.vw"
out=$("$T/loopwise-eval" --data "$d/two.vw" --actions a,b,c --metric shares --quiet --policy always:c) || fail "eval: $out"
grep -q '^warning: always:c: 100.0% of its choices go to actions with no logged data' <<<"$out" || fail "no unsupported warning: $out"
grep -Eq '^  dr +0\.000000  \[0\.000000, 1\.000000\]$' <<<"$out" || fail "DR of an unsupported action is not [0, 1] around 0: $out"
grep -q '^warning: always:c: effective sample size 0 is under 100' <<<"$out" || fail "no ESS warning: $out"

# 64 actions in a VW file: evaluated (an action list of 64); a model file holds 9, so training says so
acts=$(seq -s, -f 'a%g' 0 63)
awk 'BEGIN { srand(9); for (i = 0; i < 6400; i++) { a = i % 64 + 1; r = (rand() < (a == 64 ? 0.5 : 0.1)) ? 1 : 0;
  printf "%d:%d:0.015625 | bias f%d\n", a, -r, i % 3 } }' > "$d/wide.vw"
out=$("$T/loopwise-eval" --data "$d/wide.vw" --actions "$acts" --metric shares --quiet --policy always:a63 --policy uniform) ||
  fail "eval of 64 actions exits $?: $out"
grep -q '^policy always:a63' <<<"$out" || fail "no estimate for the 64th action: $out"
out=$("$T/loopwise-train" --data "$d/wide.vw" --actions "$acts" --quiet --out "$d/wide.lwm" 2>&1) && fail "trained 64 actions into a model: $out"
grep -q 'a model file holds at most 9 actions' <<<"$out" || fail "no reason for refusing 64 actions: $out"

# a fairness audit of a candidate: its own exposure per segment, off-policy on the logged contexts
awk 'BEGIN { srand(3); for (i = 0; i < 4000; i++) { pro = i % 2; a = (rand() < 0.5) ? 1 : 2;
  r = (a == 1 && rand() < (pro ? 0.6 : 0.01)) ? 1 : 0;
  printf "%d:%d:0.5 | bias plan^%s\n", a, -r, pro ? "pro" : "free" } }' > "$d/seg.vw"
"$T/loopwise-train" --data "$d/seg.vw" --actions a,not_now --personas 0 --quiet --out "$d/seg.lwm" >/dev/null || fail "train seg"
out=$("$T/loopwise-eval" --data "$d/seg.vw" --actions a,not_now --quiet --audit --policy "$d/seg.lwm" --policy uniform \
  --segment plan^free --segment plan^pro) || fail "audit of a candidate exits $?: $out"
grep -Eq '^plan\^free +2000 +0\.[0-9]+ +0\.[0-7][0-9]* +0\.5000 +1\.000  BELOW 0\.8$' <<<"$out" ||
  fail "the candidate's low exposure for plan^free is not flagged: $out"
grep -Eq '^plan\^pro +2000 +0\.[0-9]+ +1\.000 +0\.5000 +1\.000  ok$' <<<"$out" || fail "plan^pro row: $out"
echo ok
