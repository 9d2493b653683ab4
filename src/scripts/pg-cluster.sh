#!/usr/bin/env bash
# pg-cluster.sh: a throwaway PostgreSQL cluster for the tests and the benchmark, never the
# Debian default cluster. It lives in a temporary folder owned by an unprivileged user (lwpg,
# created when missing: PostgreSQL refuses to run as root) and listens only on a Unix socket in
# that folder.
#   dir=$(bash src/scripts/pg-cluster.sh start)   prints the folder; the URL is in $dir/url
#   bash src/scripts/pg-cluster.sh restart DIR    fast stop, then start again
#   bash src/scripts/pg-cluster.sh stop-server DIR | start-server DIR   the server only (an outage)
#   bash src/scripts/pg-cluster.sh stop DIR       stops it and removes the folder
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "pg-cluster: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u lwpg -- "$@"; else "$@"; fi
}

start_server() {
  local dir=$1
  # -w: pg_ctl returns once the server accepts connections.
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=300 -c fsync=on -c synchronous_commit=on" \
    start >/dev/null
}

case "${1:-}" in
  start)
    if [ "$(id -u)" = 0 ] && ! id -u lwpg >/dev/null 2>&1; then
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lwpg
    fi
    # PostgreSQL runs as lwpg, which must be able to reach its binaries and the folder. A root
    # unpacked from a tarball made in a mktemp folder (some fresh build roots) has / at 0700,
    # so no unprivileged user can run anything: give / the usual search bit, and say so.
    if [ "$(id -u)" = 0 ] && ! runuser -u lwpg -- test -x "$bindir/initdb"; then
      echo "pg-cluster: / is not searchable by other users (mode $(stat -c %a /)): chmod o+x /" >&2
      chmod o+x /
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/lwpg.XXXXXX")
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown lwpg: "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -U lwpg --auth=trust -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    start_server "$dir"
    as_pg "$bindir/createdb" -h "$dir" -U lwpg lwtest
    echo "postgresql://lwpg@/lwtest?host=$dir" >"$dir/url"
    echo "$dir"
    ;;
  restart)
    dir=$2
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    start_server "$dir"
    ;;
  stop-server) # the server only (the folder stays): the tests' outage
    as_pg "$bindir/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null
    ;;
  start-server)
    start_server "$2"
    ;;
  stop)
    dir=$2
    [ -d "$dir/data" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg-cluster.sh start | restart DIR | stop-server DIR | start-server DIR | stop DIR" >&2
    exit 2
    ;;
esac
