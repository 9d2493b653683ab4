#!/usr/bin/env bash
# A CLI refusing bad input: it must exit with the given status AND say why on stderr, so a
# missing file, a crash or a wrong message does not pass for the refusal under test.
#   cli_refuses.sh STATUS 'extended regex for stderr' COMMAND [ARGS...]
set -uo pipefail
want=$1 pattern=$2
shift 2
err=$("$@" 2>&1 >/dev/null)
got=$?
[ "$got" -eq "$want" ] || { echo "exit status $got, expected $want; stderr: $err"; exit 1; }
grep -Eq -- "$pattern" <<<"$err" || { echo "stderr does not match /$pattern/: $err"; exit 1; }
echo "ok: exit $got, $err"
