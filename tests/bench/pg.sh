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
# (the slowest replica's p99 at 64 connections in all), and the counts; then (LW_BENCH_PG_PROXY=1,
# the default, when nginx is installed) pg_proxy_batches_per_s and pg_proxy_p99_ms_64: the same
# replicas behind the documented nginx TLS proxy (src/ingest/nginx.example.conf), 64 connections
# over HTTPS. LW_BENCH_SECONDS
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

# The documented deployment (README "Two replicas behind nginx"): the same replicas behind
# src/ingest/nginx.example.conf, TLS at the proxy, one wrk (2 threads, 64 connections) over HTTPS.
proxy_lines=
acked_proxy=0
if [ "${LW_BENCH_PG_PROXY:-1}" = 1 ] && command -v nginx >/dev/null; then
  nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  mkdir -p "$work/nginx"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/nginx/key.pem" -out "$work/nginx/cert.pem" -days 1 \
    -subj /CN=localhost >/dev/null 2>&1
  upstream=$(for p in "${ports[@]}"; do printf 'server 127.0.0.1:%s; ' "$p"; done)
  site=$(sed -e "s|listen 443 ssl;|listen 127.0.0.1:$nport ssl;|" -e '/listen \[::\]:443 ssl;/d' \
    -e "s|server 127.0.0.1:8080;|$upstream|" -e "s|/etc/ssl/certs/ingest.example.com.pem|$work/nginx/cert.pem|" \
    -e "s|/etc/ssl/private/ingest.example.com.key|$work/nginx/key.pem|" src/ingest/nginx.example.conf)
  printf '%s\n' "worker_processes 2; pid $work/nginx/nginx.pid; error_log $work/nginx/error.log warn; daemon off;" \
    "events { worker_connections 4096; }" \
    "http { access_log off; client_body_temp_path $work/nginx/b; proxy_temp_path $work/nginx/p;" \
    "  fastcgi_temp_path $work/nginx/f; uwsgi_temp_path $work/nginx/u; scgi_temp_path $work/nginx/s;" \
    "$site" "}" >"$work/nginx/nginx.conf"
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
  pids+=($!)
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break; sleep 0.05; done
  LW_BENCH_WRK=proxy wrk -t2 -c64 -d"${secs}s" --timeout 10s -s tests/bench/pg.lua -H 'Host: ingest.example.com' \
    "https://127.0.0.1:$nport" >"$work/wrk-proxy.txt" 2>&1
  f=$work/wrk-proxy.txt
  preq=$(field wrk_requests "$f") pdur=$(field wrk_duration_us "$f") pnon=$(field wrk_non2xx "$f") pp99=$(field wrk_p99_us "$f")
  acked_proxy=$(( preq - pnon ))
  proxy_lines=$(python3 -c "print(f'pg_proxy_batches_per_s={$preq / ($pdur / 1e6):.0f}'); print(f'pg_proxy_p99_ms_64={$pp99 / 1000:.2f}'); print('pg_proxy_non2xx=$pnon')")
fi

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
acked=$(( acked + acked_proxy ))
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
if [ -n "$proxy_lines" ]; then echo "$proxy_lines"; fi
