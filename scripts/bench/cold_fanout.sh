#!/usr/bin/env bash
# Cold fan-out benchmark: N clients (default 50) start spread over the first
# SPREAD_MS of a throttled transfer of one new object, against fanoutd and
# against nginx (proxy_cache + proxy_cache_lock) side by side, both in front
# of the project's origin on loopback. Prints upstream requests, TTFB
# (median / p99 of the joiners) and the last client's completion time
# relative to the origin's own transfer time; writes JSON to $OUT.
#
#   scripts/bench/cold_fanout.sh
#   CLIENTS=50 SIZE=200000000 RATE=100000000 SPREAD_MS=1500 REPEAT=3 scripts/bench/cold_fanout.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

CLIENTS=${CLIENTS:-50}
SIZE=${SIZE:-200000000}
RATE=${RATE:-100000000}
SPREAD_MS=${SPREAD_MS:-1500}
REPEAT=${REPEAT:-3}
OUT=${OUT:-bench-results/cold_fanout.json}
ORIGIN_PORT=19000 FANOUT_PORT=19080 NGINX_PORT=19081

# nginx from Debian, without letting the package start its own service.
if ! command -v nginx >/dev/null; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  scripts/install-deps.sh nginx-light
  rm -f /usr/sbin/policy-rc.d
fi
scripts/install-deps.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFANOUT_BUILD_TESTS=OFF -DFANOUT_BUILD_BENCH=OFF >/dev/null
cmake --build build-release --target fanoutd fanout_origin fanout_load >/dev/null

work=$(mktemp -d /tmp/fanout-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

build-release/fanout_origin --listen 127.0.0.1:$ORIGIN_PORT >"$work/origin.log" 2>&1 &
pids+=($!)
build-release/fanoutd --listen 127.0.0.1:$FANOUT_PORT --cache-dir "$work/fanout" \
  --upstream http://127.0.0.1:$ORIGIN_PORT --log-level warn >"$work/fanoutd.log" 2>&1 &
pids+=($!)
mkdir -p "$work/nginx/cache"
cat >"$work/nginx/nginx.conf" <<CONF
user root;
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  sendfile on;
  proxy_cache_path $work/nginx/cache levels=1:2 keys_zone=fan:10m max_size=20g
                   inactive=60m use_temp_path=off;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://127.0.0.1:$ORIGIN_PORT;
      proxy_http_version 1.1;
      proxy_cache fan;
      proxy_cache_valid 200 10m;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 120s;
      proxy_cache_lock_age 120s;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
for port in $ORIGIN_PORT $FANOUT_PORT $NGINX_PORT; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/warm?size=1" && break; sleep 0.1; done
done

origin_seconds=$(awk "BEGIN { printf \"%.3f\", $SIZE / $RATE }")
echo "cold fan-out: $CLIENTS clients over ${SPREAD_MS} ms, ${SIZE} bytes at ${RATE} B/s" \
     "(origin transfer ${origin_seconds} s), median of $REPEAT"
mkdir -p "$(dirname "$OUT")"
results=()
for system in fanoutd nginx; do
  port=$FANOUT_PORT; [ $system = nginx ] && port=$NGINX_PORT
  runs=()
  for r in $(seq "$REPEAT"); do
    path="/cold-$system-$r-$$.bin"
    json=$(build-release/fanout_load --port $port --clients "$CLIENTS" --spread-ms "$SPREAD_MS" \
             --target "$path?size=$SIZE&rate=$RATE" || true)
    upstream=$(curl -s "http://127.0.0.1:$ORIGIN_PORT/__count?prefix=$path")
    runs+=("{\"system\": \"$system\", \"run\": $r, \"upstream_requests\": $upstream, \"load\": $json}")
  done
  results+=("${runs[@]}")
done
printf '[\n%s\n]\n' "$(IFS=$',\n'; echo "${results[*]}")" > "$OUT"

python3 - "$OUT" "$origin_seconds" <<'PY'
import json, statistics, sys
runs = json.load(open(sys.argv[1])); origin = float(sys.argv[2])
def med(system, f):
    return statistics.median(f(r) for r in runs if r["system"] == system)
rows = {}
for s in ("fanoutd", "nginx"):
    rows[s] = dict(
        up=med(s, lambda r: r["upstream_requests"]),
        p50=med(s, lambda r: r["load"]["joiner_ttfb_p50_ms"]),
        p99=med(s, lambda r: r["load"]["joiner_ttfb_p99_ms"]),
        last=med(s, lambda r: r["load"]["last_done_s"]),
        ok=med(s, lambda r: r["load"]["verified"]),
        n=med(s, lambda r: r["load"]["clients"]))
print(f"{'system':8} {'upstream':>8} {'joinTTFB p50':>13} {'p99':>10} {'last done':>10} {'x origin':>9} {'verified':>9}")
for s, v in rows.items():
    print(f"{s:8} {v['up']:>8.0f} {v['p50']:>11.1f}ms {v['p99']:>8.1f}ms {v['last']:>9.2f}s "
          f"{v['last']/origin:>8.2f}x {v['ok']:>4.0f}/{v['n']:.0f}")
f, n = rows["fanoutd"], rows["nginx"]
print(f"ratios fanoutd/nginx: joiner TTFB p50 {f['p50']/max(n['p50'],1e-9):.3f}, "
      f"p99 {f['p99']/max(n['p99'],1e-9):.3f}, last done {f['last']/n['last']:.3f}")
PY
echo "results: $OUT"
