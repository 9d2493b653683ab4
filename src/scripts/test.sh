#!/usr/bin/env bash
# test.sh: set up, build, and run every test: C unit tests under ctest (ASan/UBSan build),
# a short libFuzzer run, and the node --test suites (WASM in Node, the ingest server on
# loopback, the widget in headless Chromium against the shipped web/dist files).
set -euo pipefail
cd "$(dirname "$0")/../.."
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
jobs=$(nproc 2>/dev/null || echo 2)

bash src/scripts/setup.sh
bash src/scripts/build.sh

# A throwaway PostgreSQL cluster (never the Debian default one) for the PostgreSQL backend's
# tests: the C parity test, the ingest suite run a second time against it, and pg.test.mjs.
# Removed on exit, whatever happens.
pg_dir=$(bash src/scripts/pg-cluster.sh start)
trap 'bash src/scripts/pg-cluster.sh stop "$pg_dir"' EXIT
export LW_TEST_PG_DIR=$pg_dir
pg_url=$(cat "$pg_dir/url")

echo "== C unit tests (ASan + UBSan) =="
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug -DLW_SANITIZE=ON >/dev/null
cmake --build build/test -j "$jobs"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
  LW_TEST_PG=$pg_url ctest --test-dir build/test --output-on-failure -j "$jobs"

if [ -f tests/fuzz/run.sh ]; then
  echo "== fuzzing (time-limited) =="
  bash tests/fuzz/run.sh
fi

echo "== node tests (WASM, ingest, browser) =="
mapfile -t files < <(find tests -name '*.test.mjs' -not -path '*/node_modules/*' | sort)
LW_NATIVE_DIR=build/test node --test --test-concurrency=1 "${files[@]}"

echo "== ingest tests on PostgreSQL =="
mapfile -t ingest < <(find tests/ingest -name '*.test.mjs' | sort)
LW_TEST_PG=$pg_url LW_NATIVE_DIR=build/test node --test --test-concurrency=1 "${ingest[@]}"
