#!/usr/bin/env bash
# build.sh: build everything: the native core, tools and ingest server (build/native),
# the WASM runtime (build/wasm) and what a page downloads (web/dist).
# Needs `npm run setup` once on a new machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
jobs=$(nproc 2>/dev/null || echo 2)

if [ ! -f build/third_party/cjson/cJSON.c ] || ! command -v emcmake >/dev/null; then
  echo "build: dependencies missing: run 'npm run setup' first" >&2
  exit 1
fi

cmake -S . -B build/native -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/native -j "$jobs"

emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/wasm -j "$jobs"

node web/build.mjs
node web/console/build.mjs
