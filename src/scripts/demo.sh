#!/usr/bin/env bash
# demo.sh: set up, build, start the ingest server (SQLite in build/demo/outcomes.db) and a
# static server for the demo app, and print the URL. Ctrl-C stops both.
#   LW_DEMO_PORT (default 8000) and LW_INGEST_PORT (default 8080) choose the ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash src/scripts/setup.sh
bash src/scripts/build.sh

demo_port=${LW_DEMO_PORT:-8000}
ingest_port=${LW_INGEST_PORT:-8080}
mkdir -p build/demo/models/default
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# Models promoted into build/demo/models/default (loopwise-train --promote-into) are served to the
# demo page at GET /v1/model; until then it decides with the default model next to the script.
# The demo has one user, so /v1/stats shows every row (--k-anonymity 1; the default, 5, hides
# segments with fewer distinct installs).
build/native/src/ingest/loopwise-ingest --db build/demo/outcomes.db --port "$ingest_port" \
  --models-dir build/demo/models --k-anonymity 1 &
pids+=($!)
node web/demo/serve.mjs "$demo_port" >/dev/null &
pids+=($!)
sleep 1
echo
q=""; [ "$ingest_port" = 8080 ] || q="?endpoint=http://127.0.0.1:$ingest_port"
echo "Loopwise demo:  http://127.0.0.1:$demo_port/$q   (with a config editor: loopwise-config in the browser)"
echo "Ingest server:  http://127.0.0.1:$ingest_port/v1/stats  (SQLite: build/demo/outcomes.db)"
echo "Attributions:   http://127.0.0.1:$ingest_port/v1/attributions  (models: build/demo/models/default)"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}"
