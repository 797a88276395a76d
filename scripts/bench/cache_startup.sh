#!/usr/bin/env bash
# Start-up with a large cache, and hit latency: writes 100,000 entries
# (4 KiB bodies) into a cache directory, times the cache's index rebuild
# in-process (warm, then with the page cache dropped when allowed), then
# starts fanoutd on that directory and times it until it answers, and the
# latency of 2,000 random hits over one keep-alive connection.
#
#   scripts/bench/cache_startup.sh            ENTRIES=20000 scripts/bench/cache_startup.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ENTRIES=${ENTRIES:-100000}
scripts/install-deps.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFANOUT_BUILD_TESTS=OFF -DFANOUT_BUILD_BENCH=ON >/dev/null
cmake --build build-release --target fanoutd cache_startup_bench >/dev/null
dir=$(mktemp -d /tmp/fanout-startup-XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
pid=
echo "== index rebuild, in-process (${ENTRIES} entries)"
build-release/cache_startup_bench --dir "$dir/cache" --entries "$ENTRIES"
build-release/cache_startup_bench --dir "$dir/cache" --entries "$ENTRIES"
if sync && echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
  echo "-- page cache dropped:"
  build-release/cache_startup_bench --dir "$dir/cache" --entries "$ENTRIES"
fi
echo "== fanoutd start-up and hits"
start=$(date +%s.%N)
build-release/fanoutd --listen 127.0.0.1:19090 --admin-listen "" --cache-dir "$dir/cache" \
  --upstream http://127.0.0.1:1 --log-level info >"$dir/fanoutd.log" 2>&1 &
pid=$!
python3 - "$start" "$ENTRIES" <<'PY'
import http.client, random, sys, time
start, entries = float(sys.argv[1]), int(sys.argv[2])
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", 19090, timeout=5)
        c.request("HEAD", "/obj/0"); c.getresponse().read()
        break
    except OSError:
        time.sleep(0.01)
print(f"fanoutd answering {time.time() - start:.2f} s after start")
rnd = random.Random(1)
lat, hits = [], 0
for _ in range(2000):
    t = time.perf_counter()
    c.request("GET", f"/obj/{rnd.randrange(entries)}")
    r = c.getresponse(); body = r.read()
    lat.append((time.perf_counter() - t) * 1e3)
    hits += r.getheader("X-Cache") == "HIT" and len(body) == 4096
lat.sort()
print(f"2000 random hits: {hits} HIT with the whole body; latency p50 {lat[1000]:.3f} ms, "
      f"p99 {lat[1980]:.3f} ms (Python client, keep-alive)")
PY
grep "cache:" "$dir/fanoutd.log" || true
