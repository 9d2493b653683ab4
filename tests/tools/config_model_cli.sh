#!/usr/bin/env bash
# loopwise-config and loopwise-model as a build pipeline runs them: a good config checks and
# compiles (to a file and to stdout, the same bytes) and its compiled form checks again; a bad
# one exits 1 with its JSON path; a stripped model keeps its id and decisions' data but loses
# its metadata; a damaged model exits 1.
#   config_model_cli.sh TOOLS_DIR SOURCE_DIR
set -euo pipefail
T=$1 S=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

grep -q '^.*referral.json: ok (5 events, 2 milestones, 2 variants' <<<"$("$T/loopwise-config" check "$S/models/referral.json")" || fail "check"
cp "$S/models/referral.json" "$d/program.json"
"$T/loopwise-config" compile "$d/program.json" 2>/dev/null
[ -s "$d/program.lwc" ] || fail "compile without -o writes program.lwc next to the JSON"
"$T/loopwise-config" compile - -o - < "$d/program.json" > "$d/stdout.lwc"
cmp -s "$d/program.lwc" "$d/stdout.lwc" || fail "stdout and file differ"
[ "$(head -c 4 "$d/program.lwc")" = LWCF ] || fail "magic"
grep -q 'ok (5 events' <<<"$("$T/loopwise-config" check "$d/program.lwc")" || fail "check of the compiled form"

sed 's/"after": 3/"after": -3/' "$S/models/referral.json" > "$d/bad.json"
set +e
err=$("$T/loopwise-config" compile "$d/bad.json" -o "$d/bad.lwc" 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "bad config exit $rc"
[ "$err" = "$d/bad.json: milestones[0].after: expected a positive integer, got -3" ] || fail "message: $err"
[ ! -e "$d/bad.lwc" ] || fail "a bad config left output behind"
printf 'LWCF\001\000\000\000garbage!' > "$d/junk.lwc"
set +e; "$T/loopwise-config" check "$d/junk.lwc" 2>/dev/null; rc=$?; set -e
[ $rc -eq 1 ] || fail "damaged compiled config exit $rc"
set +e; "$T/loopwise-config" frobnicate 2>/dev/null; rc=$?; set -e
[ $rc -eq 2 ] || fail "usage exit $rc"

"$T/loopwise-model" strip "$S/models/default.lwm" -o "$d/stripped.lwm"
grep -q '^metadata: {"model":"m1"' <<<"$("$T/loopwise-model" show "$S/models/default.lwm")" || fail "show metadata"
grep -q '^metadata: (none)' <<<"$("$T/loopwise-model" show "$d/stripped.lwm")" || fail "stripped metadata"
diff <("$T/loopwise-model" show "$S/models/default.lwm" | grep -v -e '^metadata' -e '^model m') \
     <("$T/loopwise-model" show "$d/stripped.lwm" | grep -v -e '^metadata' -e '^model m') || fail "strip changed the model"
grep -q '^model m1, ' <<<"$("$T/loopwise-model" show "$d/stripped.lwm")" || fail "model id"
[ "$(wc -c < "$d/stripped.lwm")" -lt "$(wc -c < "$S/models/default.lwm")" ] || fail "not smaller"
head -c 100 "$S/models/default.lwm" > "$d/cut.lwm"
set +e; "$T/loopwise-model" show "$d/cut.lwm" 2>/dev/null; rc=$?; set -e
[ $rc -eq 1 ] || fail "damaged model exit $rc"
echo ok
