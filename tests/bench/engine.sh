#!/usr/bin/env bash
# engine.sh: the runtime's speed and memory on simulator event streams (npm run bench runs it).
# Makes a year of usage for 6,000 simulated users with loopwise-sim (rules policy, seed 7), then
# times every track call natively (bench_engine) and in WASM under Node and Chromium
# (engine-wasm.mjs). Prints name=value lines.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/bench
mkdir -p "$out"
events=$out/events.jsonl
build/native/src/tools/loopwise-sim --config models/referral.json --policy rules --users "${LW_BENCH_USERS:-6000}" \
  --days 365 --seed 7 --no-ingest --quiet --events-out "$events" >/dev/null
build/native/tests/bench/bench_engine "$events" models/referral.json models/default.lwm
node tests/bench/engine-wasm.mjs "$events"
