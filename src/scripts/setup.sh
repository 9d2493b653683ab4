#!/usr/bin/env bash
# setup.sh: install everything Loopwise needs to build and test on Debian bookworm.
# Idempotent: a second run installs nothing and finishes in about a second.
#   bash src/scripts/setup.sh            build + test dependencies
#   bash src/scripts/setup.sh --bench    also the benchmark tools (wrk, valgrind)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

pkgs=(cmake make gcc pkgconf libcjson-dev libmicrohttpd-dev libsqlite3-dev sqlite3 nettle-dev libcurl4-openssl-dev
      emscripten binaryen dpkg-dev chromium clang-14 libfuzzer-14-dev libclang-rt-14-dev
      fonts-dejavu-core ca-certificates nginx-light openssl  # nginx: the ingest tests' TLS proxy and framing reference
      libpq-dev postgresql)  # the PostgreSQL store backend; the tests' throwaway cluster (src/scripts/pg-cluster.sh)
[ "${1:-}" = "--bench" ] && pkgs+=(wrk valgrind)

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# The Debian emscripten package depends on Debian's nodejs (18). Where this machine's Node is a
# newer build not owned by dpkg, keep a copy ahead of /usr/bin on PATH so npm keeps the Node it needs.
node_bin=$(command -v node || true)
if [ -n "$node_bin" ] && [ "$node_bin" = /usr/bin/node ] && ! dpkg -S /usr/bin/node >/dev/null 2>&1; then
  [ -x /usr/local/bin/node ] || sudo_ cp -a /usr/bin/node /usr/local/bin/node
fi

# cJSON's sources for the WASM config checker (loopwise-config.wasm) come from Debian's source
# package, so we need a deb-src twin of the first stanza of the system's sources (same mirror,
# suites and keyring).
src_list=/etc/apt/sources.list.d/loopwise-src.sources
need_update=0
if [ ! -f "$src_list" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  awk 'BEGIN{RS=""; ORS="\n\n"} NR==1 { sub(/Types:[^\n]*/, "Types: deb-src"); print; exit }' \
    /etc/apt/sources.list.d/debian.sources | sudo_ tee "$src_list" >/dev/null
  need_update=1
fi

if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
  echo "setup: installing ${missing[*]:-(source lists only)}"
  sudo_ apt-get update -qq
  [ ${#missing[@]} -gt 0 ] && DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# cJSON sources, unpacked with dpkg-source so Debian's patches apply, into an ignored folder.
third=$root/build/third_party
if [ ! -f "$third/cjson/cJSON.c" ]; then
  mkdir -p "$third/dl" && rm -rf "$third/cjson"
  (cd "$third/dl" && apt-get source --download-only cjson >/dev/null 2>&1 || { sudo_ apt-get update -qq && apt-get source --download-only cjson >/dev/null; })
  dsc=$(ls "$third"/dl/cjson_*.dsc | head -n 1)
  dpkg-source -x "$dsc" "$third/cjson" >"$third/dl/unpack.log" 2>&1 || { cat "$third/dl/unpack.log" >&2; exit 1; }
  echo "setup: cJSON sources in build/third_party/cjson"
fi

if [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
echo "setup: ok"
