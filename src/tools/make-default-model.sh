#!/usr/bin/env bash
# make-default-model.sh: regenerate models/default.lwm from simulator logs.
#   bash src/tools/make-default-model.sh [build-dir]   (default build/native)
# The simulator runs the learning policy on a seeded population (so the logs hold model-mode
# exploration, "not now" included); the trainer fits the default model on every logged
# choice. Same seed and build, same bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build/native}
logs=$B/default-model-logs # a fixed path: the model's metadata records the command
rm -rf "$logs"
mkdir -p "$logs"
"$B/src/tools/loopwise-sim" --policy learning --config models/referral.json --users 5000 --days 180 --seed 7 \
  --workdir "$logs" --vw-out "$logs/default-logs.vw" --quiet >/dev/null
"$B/src/tools/loopwise-train" --data "$logs/default-logs.vw" --config models/referral.json --bits 10 \
  --model-id 1 --now 1782864000000 --seed 1 --quiet --out models/default.lwm
# The weights rounded to bfloat16 precision: the same format, ~330 B less gzip on every page.
node src/tools/round-model.mjs models/default.lwm
