#!/usr/bin/env bash
# Runs the README's commands as written and checks what they print.
#
#   setup    scripts/run.sh is started (below) and the demo runs against it;
#            scripts/test.sh is what .ci/run runs (checked here)
#   demo     "Try it" and the admin examples, against scripts/run.sh
#   cli      "Running it", with build-release/ (run.sh's build) on PATH
#   signals  against run.sh's fanoutd: the reload and reopen log lines
#   docker   run by scripts/docker-smoke.sh (checked here that it does)
# Every ```sh block of the README must carry one of these marks.
# Needs ports 8080, 8081 and 9000 free (the README names them).
#   tests/readme/readme_test.sh      (from anywhere; works on the checkout)
set -euo pipefail
cd "$(dirname "$0")/../.."
blocks=tests/readme/readme_blocks.sh
fail() { echo "FAIL: $*"; exit 1; }

$blocks README.md --check
for tag in $(sed -n 's/^<!-- readme-test: \([a-z]*\) -->$/\1/p' README.md | sort -u); do
  case $tag in setup | demo | cli | signals | docker) ;; *) fail "unknown readme-test mark '$tag'" ;; esac
done
grep -qx 'exec scripts/test.sh' .ci/run || fail ".ci/run does not run scripts/test.sh"
grep -q 'readme_blocks.sh README.md docker' scripts/docker-smoke.sh ||
  fail "scripts/docker-smoke.sh does not run the README's docker commands"
[ "$($blocks README.md setup | grep -c '^scripts/\(run\|test\)\.sh ')" -eq 2 ] ||
  fail "the README's first block is not scripts/run.sh and scripts/test.sh"

for port in 8080 8081 9000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port is taken: the README's commands use it"
  fi
done

work=$(mktemp -d /tmp/fanout-readme-XXXXXX)
run_pid=
cleanup() {
  if [ -n "$run_pid" ]; then
    kill -TERM -- "-$run_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$run_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "=== scripts/run.sh (as the README's first block) ==="
FANOUT_DEMO_CACHE="$work/cache" setsid scripts/run.sh >"$work/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 1 1200); do
  curl -sf -o /dev/null http://127.0.0.1:8081/readyz && break
  kill -0 "$run_pid" 2>/dev/null || { cat "$work/run.log"; fail "scripts/run.sh ended"; }
  sleep 0.5
done
curl -sf -o /dev/null http://127.0.0.1:8081/readyz || { tail -20 "$work/run.log"; fail "no fanoutd on :8081"; }

echo "=== demo blocks ==="
$blocks README.md demo >"$work/demo.sh"
bash -euo pipefail "$work/demo.sh" >"$work/demo.out" 2>&1 || { cat "$work/demo.out"; fail "a demo command failed"; }
cat "$work/demo.out"
out=$(cat "$work/demo.out")
[ "$(grep -ci '^x-cache: MISS' <<<"$out")" -eq 1 ] || fail "expected one X-Cache: MISS among the ten"
[ "$(grep -ci '^x-cache: JOIN' <<<"$out")" -eq 9 ] || fail "expected nine X-Cache: JOIN"
[ "$(grep -ci '^x-cache: HIT' <<<"$out")" -eq 1 ] || fail "expected the third request to be a HIT"
grep -q '^200 first byte' <<<"$out" || fail "the first download did not answer 200"
grep -q '^fanout_fetches_completed_total 2$' <<<"$out" || fail "metrics: expected 2 fetches completed"
grep -q '^fanout_requests_total{cache="JOIN",code="2xx"} 9$' <<<"$out" || fail "metrics: expected 9 joins"
grep -q '"key": "http://127.0.0.1:9000/demo/one.bin' <<<"$out" || fail "/entries does not list one.bin"
grep -q '^purged http://127.0.0.1:9000/demo/many.bin?size=200MB&rate=50MB$' <<<"$out" ||
  fail "PURGE did not remove many.bin"
grep -q '"purged": true' <<<"$out" || fail "POST /purge?url= did not remove one.bin"
grep -q '"ready": true' <<<"$out" || fail "/readyz is not ready"
[ "$(grep -c 'fetch start GET http://127.0.0.1:9000/demo/many.bin' "$work/run.log")" -eq 1 ] ||
  fail "many.bin was fetched more than once"

echo "=== cli block (fanoutd = build-release/fanoutd) ==="
$blocks README.md cli >"$work/cli.sh"
PATH="$PWD/build-release:$PATH" bash -euo pipefail "$work/cli.sh" >"$work/cli.out" 2>&1 ||
  { cat "$work/cli.out"; fail "a cli command failed"; }
cat "$work/cli.out"
[ "$(grep -c '^fanoutd: configuration OK' "$work/cli.out")" -eq 2 ] || fail "--check-config"
grep -q '^fanoutd [0-9]' "$work/cli.out" || fail "--version"

echo "=== signals block ==="
# The README signals "the oldest fanoutd": it must be run.sh's (its session
# is run_pid's), not one a crashed test left behind.
oldest=$(pgrep -o -x fanoutd || true)
[ -n "$oldest" ] && [ "$(ps -o sid= -p "$oldest" | tr -d ' ')" = "$run_pid" ] ||
  fail "the oldest fanoutd (pid ${oldest:-none}: $(ps -o args= -p "${oldest:-1}" 2>/dev/null)) is not scripts/run.sh's; stop it first"
$blocks README.md signals >"$work/signals.sh"
bash -euo pipefail "$work/signals.sh"
for line in "signal SIGHUP: config reloaded" "signal SIGUSR1: log files reopened"; do
  for _ in $(seq 1 100); do grep -q "$line" "$work/run.log" && break; sleep 0.1; done
  grep -q "$line" "$work/run.log" || fail "no '$line' in fanoutd's log"
done
curl -sf -o /dev/null 'http://127.0.0.1:8080/demo/after-reload.bin?size=10' || fail "not serving after the reload"
echo "PASS: every README command ran as written"
