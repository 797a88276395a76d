#!/usr/bin/env bash
# End-to-end: the admin status page in a real browser.
#
# Starts the test origin and fanoutd, starts 3 curl downloads of one
# throttled object (12 MB at 2 MB/s: one fetch, 3 readers), and has
# headless Chromium (Playwright) open the status page: it must show the
# fetch with its 3 readers and an upstream rate, and its progress bar must
# advance while the page stays loaded. Saves a screenshot as a test
# artifact (test-artifacts/status_page.png under the working directory, or
# $FANOUT_ARTIFACTS), then checks every download byte for byte.
#
#   tests/browser/status_page.sh FANOUTD_BINARY ORIGIN_BINARY
# Needs: chromium, node with tests/browser/node_modules (npm ci), curl.
set -euo pipefail
fanoutd=$1
origin=$2
here=$(cd "$(dirname "$0")" && pwd)
artifacts=${FANOUT_ARTIFACTS:-$PWD/test-artifacts}
mkdir -p "$artifacts"
work=$(mktemp -d /tmp/fanout-status-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for_line() {  # FILE REGEX: prints the first capture group once it is there
  for _ in $(seq 1 200); do
    local got
    got=$(sed -n "s/$2/\\1/p" "$1" | head -1)
    [ -n "$got" ] && { echo "$got"; return 0; }
    sleep 0.05
  done
  echo "no line matching '$2' in $1:" >&2; cat "$1" >&2; return 1
}

"$origin" --listen 127.0.0.1:0 >"$work/origin.log" 2>&1 &
pids+=($!)
origin_port=$(wait_for_line "$work/origin.log" '.*listening on 127\.0\.0\.1:\([0-9]*\).*')
"$fanoutd" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --cache-dir "$work/cache" \
  --upstream "http://127.0.0.1:$origin_port" --log-level info >"$work/fanoutd.log" 2>&1 &
pids+=($!)
port=$(wait_for_line "$work/fanoutd.log" '.*fanoutd .* listening on 127\.0\.0\.1:\([0-9]*\).*')
admin=$(wait_for_line "$work/fanoutd.log" '.*admin interface listening on 127\.0\.0\.1:\([0-9]*\).*')

path="/status-page-demo.bin"
# Held at 2 MB until the page has shown the fetch and its readers (then
# the browser script releases it): however slow Chromium starts, the fetch
# is still there to be seen.
target="$path?size=12MB&rate=2MB&hold_at=2000000&cc=max-age%3D600"
for i in 1 2 3; do
  curl -sS --max-time 150 -o "$work/client$i" "http://127.0.0.1:$port$target" &
  pids+=($!)
  clients+=($!)
done

result=$(cd "$here" && timeout 120 node status_page.mjs "http://127.0.0.1:$admin/" \
  "status-page-demo.bin" 3 "$artifacts/status_page.png" \
  "http://127.0.0.1:$origin_port/__release?path=$path")
echo "browser: $result"
for c in "${clients[@]}"; do wait "$c"; done
curl -sS -o "$work/direct" "http://127.0.0.1:$origin_port$target"
for i in 1 2 3; do
  cmp "$work/direct" "$work/client$i" || { echo "FAIL: client $i got other bytes"; exit 1; }
done
fetches=$(grep -c "fetch start GET .*status-page-demo.bin" "$work/fanoutd.log" || true)
[ "$fetches" -eq 1 ] || { echo "FAIL: $fetches fetches, expected 1"; exit 1; }
echo "screenshot: $artifacts/status_page.png"
echo "PASS"
