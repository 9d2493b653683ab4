#!/usr/bin/env bash
# pg.sh: loopwise-ingest replicas on one PostgreSQL database (a throwaway cluster on this machine,
# src/scripts/pg-cluster.sh, Unix socket, synchronous_commit = on, fsync on).
#   LW_BENCH_PG_REPLICAS (default 2) release-build replicas, rate limits off, all on one database;
#   one wrk per replica (1 thread, 64 / replicas connections each, so 64 in all) posts batches
#   shaped like tests/cases/ingest/valid-batch.json, 5 events and a fresh batch_id each
#   (tests/bench/ingest.lua through pg.lua, the same requests as ingest.sh). Every acknowledged batch is
#   committed durably; the script checks the database holds at least as many batches as wrk saw
#   acknowledged.
# Prints name=value lines: pg_replicas, pg_batches_per_s (all replicas together), pg_p99_ms_64
# (the slowest replica's p99 at 64 connections in all), and the counts. LW_BENCH_SECONDS
# (default 10) sets the run's length.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${LW_BENCH_SECONDS:-10}
replicas=${LW_BENCH_PG_REPLICAS:-2}
bash src/scripts/setup.sh --bench >&2
bin=${LW_NATIVE_DIR:-build/native}/src/ingest/loopwise-ingest
[ -x "$bin" ] || { echo "pg.sh: $bin missing; run npm run build" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || true

work=$(mktemp -d /tmp/lw-pgbench.XXXXXX)
pg_dir=
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$pg_dir" ] && bash src/scripts/pg-cluster.sh stop "$pg_dir"
  rm -rf "$work"
}
trap cleanup EXIT
field() { sed -n "s/^$1=//p" "$2" | tail -1; }

pg_dir=$(bash src/scripts/pg-cluster.sh start)
url=$(cat "$pg_dir/url")

ports=()
for r in $(seq "$replicas"); do
  "$bin" --db "$url" --port 0 --rate-limit off --max-connections-per-address 0 \
    --max-connections 8192 --log-level warn >"$work/ingest$r.out" 2>"$work/ingest$r.err" &
  pids+=($!)
done
for r in $(seq "$replicas"); do
  for _ in $(seq 200); do grep -q 'port' "$work/ingest$r.out" 2>/dev/null && break; sleep 0.05; done
  port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/ingest$r.out")
  [ -n "$port" ] || { cat "$work/ingest$r.err" >&2; exit 1; }
  ports+=("$port")
done

conns=$(( 64 / replicas ))
[ "$conns" -ge 1 ] || conns=1
wrks=()
for r in $(seq "$replicas"); do
  LW_BENCH_WRK=$r wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s -s tests/bench/pg.lua "http://127.0.0.1:${ports[$((r - 1))]}" \
    >"$work/wrk$r.txt" 2>&1 &
  wrks+=($!)
done
for w in "${wrks[@]}"; do wait "$w"; done

stored=$(psql "$url" -X -At -c 'SELECT count(*) FROM batches')
stored_events=$(psql "$url" -X -At -c 'SELECT count(*) FROM events')
acked=0 non=0 rate=0 p99=0 errors=0
for r in $(seq "$replicas"); do
  f=$work/wrk$r.txt
  req=$(field wrk_requests "$f") dur=$(field wrk_duration_us "$f") n=$(field wrk_non2xx "$f")
  acked=$(( acked + req - n )) non=$(( non + n ))
  errors=$(( errors + $(field wrk_socket_errors "$f") ))
  rate=$(python3 -c "print($rate + $req / ($dur / 1e6))")
  p=$(field wrk_p99_us "$f")
  [ "$p" -gt "$p99" ] && p99=$p
done
if [ "$stored" -lt "$acked" ]; then
  echo "pg.sh: only $stored batches stored but $acked acknowledged" >&2
  exit 1
fi
echo "pg_replicas=$replicas"
python3 -c "print(f'pg_batches_per_s={$rate:.0f}'); print(f'pg_p99_ms_64={$p99 / 1000:.2f}')"
echo "pg_stored_batches=$stored"
echo "pg_stored_events=$stored_events"
echo "pg_non2xx=$non"
echo "pg_socket_errors=$errors"
