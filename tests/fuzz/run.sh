#!/usr/bin/env bash
# run.sh: build the libFuzzer targets with clang-14 and fuzz each for a short, fixed time.
#   LW_FUZZ_SECONDS   seconds per target (default 20)
# For each fuzz_<name>: replay tests/fuzz/regressions/<name>/ (every input that ever crashed),
# then fuzz from tests/fuzz/corpus/<name>/ in a scratch copy. A new crash input is written to
# tests/fuzz/regressions/<name>/ (commit it: it becomes a regression case) and fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${LW_FUZZ_SECONDS:-20}
build=build/fuzz
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLW_BUILD_FUZZ=ON -DLW_BUILD_TESTS=OFF -DLW_BUILD_TOOLS=OFF >/dev/null
targets=$(sed -n 's/^add_executable(\(fuzz_[A-Za-z0-9_]*\).*/\1/p' tests/fuzz/CMakeLists.txt)
# shellcheck disable=SC2086
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target $targets >/dev/null

status=0
for t in $targets; do
  name=${t#fuzz_}
  bin=$build/tests/fuzz/$t
  regress=tests/fuzz/regressions/$name
  work=tests/fuzz/corpus-work/$name
  mkdir -p "$regress" "$work"
  if compgen -G "$regress/*" >/dev/null; then
    "$bin" -runs=0 "$regress"/* >/dev/null 2>&1 || { echo "fuzz: $t fails a regression input in $regress" >&2; "$bin" "$regress"/* 2>&1 | tail -30 >&2; status=1; continue; }
  fi
  cp -n tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
  dict=tests/fuzz/$name.dict
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=65536
        -artifact_prefix="$regress/" -print_final_stats=1)
  [ -f "$dict" ] && args+=(-dict="$dict")
  if "$bin" "${args[@]}" "$work" >"$build/$t.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$t.log")
    echo "fuzz: $t ok (${runs:-?} inputs in ${seconds}s)"
  else
    echo "fuzz: $t FAILED; crash input kept in $regress/" >&2
    tail -40 "$build/$t.log" >&2
    status=1
  fi
done
exit $status
