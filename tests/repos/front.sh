# Sourced by the tests in tests/repos/: starts the test origin serving a
# directory's files under a prefix, and fanoutd in front of it with an
# example config's routes and rules (only the addresses are the test's).
# Expects $work (a scratch directory) and the array pids (killed on exit by
# the caller). Sets origin_port and port (fanoutd's).
#   start_front ORIGIN_BINARY FANOUTD_BINARY EXAMPLE_JSON /PREFIX DIR
# Or, as a forward proxy with config/examples/forward-proxy.json: the
# per-host rules of the entry matching HOST apply to the origin's address,
# the only host allowed.
#   start_proxy ORIGIN_BINARY FANOUTD_BINARY /PREFIX DIR HOST

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_front() {
  local origin=$1 fanoutd=$2 example=$3 prefix=$4 dir=$5
  origin_port=$(free_port)
  "$origin" --listen "127.0.0.1:$origin_port" --files "$prefix=$dir" >"$work/origin.log" 2>&1 &
  pids+=($!)
  python3 - "$example" "$work/fanout.json" "$origin_port" "$work/cache" <<'PY'
import json, sys
example, out, port, cache = sys.argv[1:]
cfg = json.load(open(example))
for route in cfg["routes"]:
    route["upstream"] = f"http://127.0.0.1:{port}" + route["prefix"]
cfg.update(listen="127.0.0.1:0", cache_dir=cache, admin_listen="",
           log={"level": "info", "access_log": True})
json.dump(cfg, open(out, "w"), indent=1)
PY
  start_fanoutd "$fanoutd"
}

start_proxy() {
  local origin=$1 fanoutd=$2 prefix=$3 dir=$4 host=$5
  origin_port=$(free_port)
  "$origin" --listen "127.0.0.1:$origin_port" --files "$prefix=$dir" >"$work/origin.log" 2>&1 &
  pids+=($!)
  python3 - "$here/../../config/examples/forward-proxy.json" "$work/fanout.json" "$origin_port" \
    "$work/cache" "$host" <<'PY'
import json, sys
example, out, port, cache, host = sys.argv[1:]
cfg = json.load(open(example))
proxy = cfg["forward_proxy"]
origin = f"127.0.0.1:{port}"
proxy["allow"] = [origin]
proxy["hosts"] = [dict(h, match=[origin]) for h in proxy["hosts"] if host in h["match"]]
assert proxy["hosts"], f"no per-host rules for {host} in {example}"
cfg.update(listen="127.0.0.1:0", cache_dir=cache, admin_listen="",
           log={"level": "info", "access_log": True})
json.dump(cfg, open(out, "w"), indent=1)
PY
  start_fanoutd "$fanoutd"
}

start_fanoutd() {
  "$1" --config "$work/fanout.json" >"$work/fanoutd.log" 2>&1 &
  pids+=($!)
  port=
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.*fanoutd .* listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/fanoutd.log" | head -1)
    [ -n "$port" ] && curl -sf -o /dev/null "http://127.0.0.1:$origin_port/__count?prefix=/" && return 0
    sleep 0.05
  done
  echo "fanoutd or the origin did not start"
  cat "$work/fanoutd.log" "$work/origin.log"
  exit 1
}

# Requests the origin has seen for paths under a prefix.
origin_requests() { curl -sf "http://127.0.0.1:$origin_port/__count?prefix=$1"; }

# The access-log lines of GET requests fanoutd wrote after line $1.
gets_after_line() { tail -n +"$(($1 + 1))" "$work/fanoutd.log" | grep '"GET ' || true; }
