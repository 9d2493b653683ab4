#!/usr/bin/env bash
# demo.sh: set up, build, start the ingest server (SQLite in build/demo/outcomes.db) and a
# static server for the demo app, and print the URL. Ctrl-C stops both.
#   LW_DEMO_PORT (default 8000), LW_INGEST_PORT (default 8080) and LW_BACKEND_PORT (default 8090,
#   the stand-in host backend, web/demo/backend.mjs) choose the ports.
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
# The demo site with a secret key for its stand-in host backend (web/demo/backend.mjs, which
# reports referee conversions: the only ones that count for rewards). The key is drawn once
# and kept in build/demo/ingest.json, never sent to the page.
backend_port=${LW_BACKEND_PORT:-8090}
if [ ! -f build/demo/ingest.json ]; then
  secret="demo-secret-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  cat > build/demo/ingest.json <<JSON
{"sites": [{"id": "default", "write_key": "demo-site-key",
            "origins": ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            "secret_keys": ["$secret"]}]}
JSON
fi
secret=$(sed -n 's/.*"secret_keys": \["\([^"]*\)".*/\1/p' build/demo/ingest.json)
build/native/src/ingest/loopwise-ingest --db build/demo/outcomes.db --port "$ingest_port" \
  --config build/demo/ingest.json --models-dir build/demo/models --k-anonymity 1 &
pids+=($!)
node web/demo/serve.mjs "$demo_port" >/dev/null &
pids+=($!)
LW_DEMO_SECRET="$secret" node web/demo/backend.mjs "$backend_port" --ingest "http://127.0.0.1:$ingest_port" >/dev/null &
pids+=($!)
sleep 1
echo
q=""; [ "$ingest_port" = 8080 ] || q="?endpoint=http://127.0.0.1:$ingest_port"
[ "$backend_port" = 8090 ] || q="${q:-?}${q:+&}backend=http://127.0.0.1:$backend_port"
echo "Loopwise demo:  http://127.0.0.1:$demo_port/$q   (with a config editor: loopwise-config in the browser)"
echo "Ingest server:  http://127.0.0.1:$ingest_port/v1/stats  (SQLite: build/demo/outcomes.db)"
echo "Attributions:   http://127.0.0.1:$ingest_port/v1/attributions  (models: build/demo/models/default)"
echo "Host backend:   http://127.0.0.1:$backend_port/signup  (reports conversions with the secret key in build/demo/ingest.json)"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}"
