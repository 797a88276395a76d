#!/usr/bin/env bash
# Builds fanoutd (Release) and runs it in the foreground; on a fresh Debian 12
# machine it installs what is missing first.
#
#   scripts/run.sh                  the offline demo: the project's demo origin
#                                   on 127.0.0.1:9000 and fanoutd on :8080 with
#                                   the shipped config/fanout.json
#   scripts/run.sh my.json [flags]  fanoutd with your config (and extra flags)
#
# Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

build=build-release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFANOUT_BUILD_TESTS=OFF -DFANOUT_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target fanoutd fanout_origin

if [ $# -ge 1 ]; then
  config=$1; shift
  exec "$build/fanoutd" --config "$config" "$@"
fi

cache_dir=${FANOUT_DEMO_CACHE:-/tmp/fanout-demo-cache}
"$build/fanout_origin" --listen 127.0.0.1:9000 &
origin_pid=$!
trap 'kill "$origin_pid" 2>/dev/null || true' EXIT INT TERM
cat <<MSG
demo origin on 127.0.0.1:9000 (pid $origin_pid); fanoutd on :8080, cache in $cache_dir
try:  curl -o /dev/null -D - 'http://127.0.0.1:8080/demo/big.bin?size=200MB&rate=50MB'
      curl -s 127.0.0.1:8081/entries     # the admin interface: stored entries
MSG
"$build/fanoutd" --config config/fanout.json --cache-dir "$cache_dir"
