#!/usr/bin/env bash
# ingest.sh: throughput and latency of loopwise-ingest against nginx on this machine.
#   wrk (2 threads) posts batches shaped like tests/cases/ingest/valid-batch.json, 5 events and a
#   fresh batch_id each (tests/bench/ingest.lua), to the release build with rate limits off,
#   then the same requests to nginx answering 204 (the HTTP ceiling here). Every batch the
#   server acknowledges is durably committed (WAL, synchronous=FULL, group commit); the script
#   checks the store holds at least as many batches as wrk saw acknowledged.
# Prints name=value lines. LW_BENCH_SECONDS (default 10) sets each run's length.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
secs=${LW_BENCH_SECONDS:-10}
bash src/scripts/setup.sh --bench >&2
bin=${LW_NATIVE_DIR:-build/native}/src/ingest/loopwise-ingest
[ -x "$bin" ] || { echo "ingest.sh: $bin missing; run npm run build" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || true

work=$(mktemp -d /tmp/lw-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
field() { sed -n "s/^$1=//p" "$2" | tail -1; }

run_wrk() { # url connections out-file
  wrk -t2 -c"$2" -d"${secs}s" --timeout 10s -s tests/bench/ingest.lua "$1" >"$3" 2>&1
}

# ---- ingest
"$bin" --db "$work/bench.db" --port 0 --rate-limit off --max-connections-per-address 0 \
  --max-connections 8192 --log-level warn >"$work/ingest.out" 2>"$work/ingest.err" &
ingest_pid=$!
pids+=("$ingest_pid")
for _ in $(seq 100); do grep -q 'port' "$work/ingest.out" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/ingest.out")
[ -n "$port" ] || { cat "$work/ingest.err" >&2; exit 1; }

run_wrk "http://127.0.0.1:$port" 64 "$work/ingest64.txt"
run_wrk "http://127.0.0.1:$port" 1000 "$work/ingest1000.txt"
rss_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$ingest_pid/status")
kill -TERM "$ingest_pid"
wait "$ingest_pid" || true
stored=$(sqlite3 "$work/bench.db" 'SELECT count(*) FROM batches')
stored_events=$(sqlite3 "$work/bench.db" 'SELECT count(*) FROM events')

# ---- nginx, same requests
nport=$(free_port)
mkdir -p "$work/nginx"
sed -e "s|@DIR@|$work/nginx|g" -e "s|@PORT@|$nport|g" tests/bench/nginx.conf >"$work/nginx/nginx.conf"
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break; sleep 0.05; done
run_wrk "http://127.0.0.1:$nport" 64 "$work/nginx64.txt"

req64=$(field wrk_requests "$work/ingest64.txt")
dur64=$(field wrk_duration_us "$work/ingest64.txt")
non64=$(field wrk_non2xx "$work/ingest64.txt")
req1k=$(field wrk_requests "$work/ingest1000.txt")
non1k=$(field wrk_non2xx "$work/ingest1000.txt")
nreq=$(field wrk_requests "$work/nginx64.txt")
ndur=$(field wrk_duration_us "$work/nginx64.txt")
acked=$(( req64 - non64 + req1k - non1k ))
if [ "$stored" -lt "$acked" ]; then
  echo "ingest.sh: only $stored batches stored but $acked acknowledged" >&2
  exit 1
fi
python3 - "$req64" "$dur64" "$nreq" "$ndur" \
  "$(field wrk_p99_us "$work/ingest64.txt")" "$(field wrk_p99_us "$work/ingest1000.txt")" "$rss_kb" <<'PY'
import sys
req, dur, nreq, ndur, p99_64, p99_1k, rss = map(float, sys.argv[1:])
ingest = req / (dur / 1e6)
nginx = nreq / (ndur / 1e6)
print(f"ingest_batches_per_s={ingest:.0f}")
print(f"nginx_requests_per_s={nginx:.0f}")
print(f"ingest_vs_nginx={ingest / nginx:.3f}")
print(f"ingest_p99_ms_64={p99_64 / 1000:.2f}")
print(f"ingest_p99_ms_1000={p99_1k / 1000:.2f}")
print(f"ingest_peak_rss_mb={rss / 1024:.1f}")
PY
# The store alone (no HTTP): the ceiling the single writer puts on the server.
store_bench=${LW_NATIVE_DIR:-build/native}/tests/ingest/bench_store
if [ -x "$store_bench" ]; then
  "$store_bench" "$work/store-only.db" 1000 64 | sed 's/^/ingest_/'
fi
echo "ingest_stored_batches=$stored"
echo "ingest_stored_events=$stored_events"
echo "ingest_non2xx=$(( non64 + non1k ))"
echo "ingest_socket_errors=$(( $(field wrk_socket_errors "$work/ingest64.txt") + $(field wrk_socket_errors "$work/ingest1000.txt") ))"
