#!/usr/bin/env bash
# bench.sh: run every benchmark under tests/bench/ (*.sh and *.bench.mjs). Each prints its
# results as name=value lines.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
bash src/scripts/setup.sh --bench >&2
bash src/scripts/build.sh >&2
status=0
for f in $(find tests/bench -maxdepth 1 \( -name '*.sh' -o -name '*.bench.mjs' \) | sort); do
  echo "# $f" >&2
  case "$f" in
    *.sh) bash "$f" || status=1 ;;
    *.mjs) node "$f" || status=1 ;;
  esac
done
exit $status
