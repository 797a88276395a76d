#!/usr/bin/env bash
# End-to-end: a real browser plays media through fanoutd and seeks.
#
# Makes a 2-minute WAV (21 MB) and a page with an <audio> element, serves
# them from a plain origin (Python's file server, which knows nothing of
# ranges), puts fanoutd in front, and has headless Chromium (Playwright)
# open the page, seek to the middle and play. Passes if playback reached
# past the seek position, fanoutd answered the browser's range requests
# with 206, and the origin was asked for the file exactly once.
#
#   tests/browser/media_seek.sh FANOUTD_BINARY
# Needs: chromium, node with tests/browser/node_modules (npm ci), python3.
set -euo pipefail
fanoutd=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/fanout-browser-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/www"

python3 - "$work/www/tone.wav" <<'PY'
import math, struct, sys, wave
rate, seconds = 44100, 120
cycle = b"".join(struct.pack("<hh", int(8000 * math.sin(2 * math.pi * i / 100)),
                             int(8000 * math.sin(2 * math.pi * i / 100))) for i in range(100))
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(2); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(cycle * (rate * seconds // 100))
PY
cat >"$work/www/page.html" <<'HTML'
<!doctype html>
<html><body><audio src="/tone.wav" preload="auto" controls></audio></body></html>
HTML

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
origin_port=$(free_port)
# Python's file server, plus an hour of freshness (a file it just wrote has
# none by the heuristic, and each seek would then be revalidated upstream).
(cd "$work/www" && exec python3 -c '
import functools, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cache-Control", "max-age=3600")
        super().end_headers()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
' "$origin_port") >"$work/origin.log" 2>&1 &
pids+=($!)
"$fanoutd" --listen 127.0.0.1:0 --admin-listen "" --cache-dir "$work/cache" \
  --upstream "http://127.0.0.1:$origin_port" --log-level info >"$work/fanoutd.log" 2>&1 &
pids+=($!)
port=
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*fanoutd .* listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/fanoutd.log" | head -1)
  [ -n "$port" ] && curl -sf -o /dev/null "http://127.0.0.1:$origin_port/page.html" && break
  sleep 0.05
done
[ -n "$port" ] || { echo "fanoutd did not start"; cat "$work/fanoutd.log"; exit 1; }

result=$(cd "$here" && timeout 120 node media_seek.mjs "http://127.0.0.1:$port/page.html")
echo "browser: $result"
python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["reached"] > r["target"] + 0.9, f"playback did not pass the seek position: {r}"
PY
ranges=$(grep -c '"GET /tone.wav" 206' "$work/fanoutd.log" || true)
fetches=$(grep -c '"GET /tone.wav HTTP' "$work/origin.log" || true)
seeks=$(grep '"GET /tone.wav" 206' "$work/fanoutd.log" | grep -vc ' 206 MISS ' || true)
echo "fanoutd: $ranges range responses (206) for tone.wav; origin: $fetches request(s) for it"
grep '"GET /tone.wav"' "$work/fanoutd.log" | sed 's/^/  /' | head -10
if [ "$ranges" -lt 2 ] || [ "$seeks" -lt 1 ] || [ "$fetches" -ne 1 ]; then
  echo "FAIL: expected the first range request and a seek's range request answered 206,"
  echo "      and exactly one origin request"
  exit 1
fi
echo "PASS"
