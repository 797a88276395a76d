#!/usr/bin/env bash
# Runs the public HTTP cache conformance suite (cache-tests,
# https://github.com/http-tests/cache-tests) against fanoutd and prints its
# results by kind (required / optimal / check), as the suite classifies
# them, and the tests that did not pass. The suite is not part of fanout:
# pass the path of a checkout of it (Node.js runs it; its README says how
# to install it).
#   scripts/conformance.sh /path/to/cache-tests [fanoutd-binary]
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
suite=$(cd "${1:?usage: $0 /path/to/cache-tests [fanoutd-binary]}" && pwd)
fanoutd=${2:-$(cd "$(dirname "$0")/.." && pwd)/build/fanoutd}
[ -x "$fanoutd" ] || { echo "no fanoutd at $fanoutd (build it first: scripts/test.sh)"; exit 1; }
work=$(mktemp -d /tmp/fanout-conformance-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$suite" && npm_config_protocol=http npm_config_port=0 npm_config_host=127.0.0.1 \
  npm_config_pidfile="$work/origin.pid" exec node test-engine/server/server.mjs) >"$work/origin.log" 2>&1 &
pids+=($!)
origin_port= port=
for _ in $(seq 1 100); do
  origin_port=$(sed -n 's|.*Listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$work/origin.log")
  [ -n "$origin_port" ] && break
  sleep 0.1
done
[ -n "$origin_port" ] || { echo "the suite's server did not start"; cat "$work/origin.log"; exit 1; }
"$fanoutd" --listen 127.0.0.1:0 --admin-listen "" --cache-dir "$work/cache" \
  --upstream "http://127.0.0.1:$origin_port" --log-level info >"$work/fanoutd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*fanoutd .* listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/fanoutd.log" | head -1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "fanoutd did not start"; cat "$work/fanoutd.log"; exit 1; }

# The interim (1xx) tests need undici's client, preloaded if the suite has it.
node_options=
[ -d "$suite/node_modules/undici" ] && node_options="--import undici"
(cd "$suite" && NODE_OPTIONS="$node_options" timeout 600 npm run --silent cli \
  --base="http://127.0.0.1:$port") >"$work/results.json"
node --input-type=module - "$suite" "$work/results.json" <<'JS'
import fs from 'fs'
const [suite, file] = process.argv.slice(2)
const { default: tests } = await import(`${suite}/tests/index.mjs`)
const { determineTestResult, resultTypes } = await import(`${suite}/test-engine/lib/results.mjs`)
const results = JSON.parse(fs.readFileSync(file, 'utf8'))
const names = {}
for (const [name, type] of Object.entries(resultTypes)) names[type[0]] = name
const counts = {}, misses = []
for (const suiteTests of tests) {
  for (const test of suiteTests.tests) {
    const kind = test.kind || 'required'
    const result = names[determineTestResult(tests, test.id, results, false)[0]]
    counts[kind] ??= {}
    counts[kind][result] = (counts[kind][result] ?? 0) + 1
    if (!['pass', 'yes', 'untested'].includes(result)) misses.push(`${kind}\t${result}\t${test.id}`)
  }
}
for (const [kind, byResult] of Object.entries(counts)) {
  console.log(`${kind}: ` + Object.entries(byResult).map(([r, n]) => `${r} ${n}`).join(', '))
}
console.log('\nnot passed:\n' + misses.join('\n'))
JS
