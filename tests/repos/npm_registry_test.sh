#!/usr/bin/env bash
# End-to-end: npm through fanoutd, with the shipped npm registry example.
#
# Makes two packages (tarballs packed here, with their sha1 and sha512 in
# the package documents, as a registry publishes them), serves them from
# the test origin with no freshness headers at all (only ETag and
# Last-Modified), and puts fanoutd in front with
# config/examples/npm-registry.json's route rules. Then npm install twice,
# each time into a new project with a new, empty npm cache: the second
# install takes both tarballs from fanoutd's cache (HIT) and the origin
# sees no request at all. npm checks every tarball's integrity itself.
#
# With "proxy", fanoutd is npm's HTTP proxy instead (npm --proxy, the
# registry naming the origin itself), with
# config/examples/forward-proxy.json's rules for registry.npmjs.org; the
# same checks hold.
#
#   tests/repos/npm_registry_test.sh FANOUTD_BINARY ORIGIN_BINARY [proxy]
# Needs: npm (Node.js), python3, curl, tar.
set -euo pipefail
fanoutd=$1
origin=$2
mode=${3:-routes}
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY no_proxy NO_PROXY
here=$(cd "$(dirname "$0")" && pwd)
example="$here/../../config/examples/npm-registry.json"
work=$(mktemp -d /tmp/fanout-npm-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/registry"
source "$here/front.sh"
if [ "$mode" = proxy ]; then
  start_proxy "$origin" "$fanoutd" /npm "$work/registry" registry.npmjs.org
  registry="http://127.0.0.1:$origin_port/npm/"
  proxy_opts=(--proxy="http://127.0.0.1:$port" --noproxy=)
  logged=http://127.0.0.1:$origin_port  # the access log names whole URLs
else
  start_front "$origin" "$fanoutd" "$example" /npm "$work/registry"
  registry="http://127.0.0.1:$port/npm/"
  proxy_opts=()
  logged=
fi

# ---- the registry: a package document per package, its tarball beside ----
for name in tinypkg smallpkg; do
  mkdir -p "$work/src/$name/package" "$work/registry/$name/-"
  printf '{"name": "%s", "version": "1.0.0", "main": "index.js"}\n' "$name" \
    >"$work/src/$name/package/package.json"
  printf 'module.exports = "%s says hello";\n' "$name" >"$work/src/$name/package/index.js"
  head -c 100000 /dev/urandom | base64 >"$work/src/$name/package/data.txt"
  tar -czf "$work/registry/$name/-/$name-1.0.0.tgz" -C "$work/src/$name" package
  python3 - "$work/registry/$name" "$name" "$registry" <<'PY'
import base64, hashlib, json, sys
directory, name, registry = sys.argv[1:]
tgz = open(f"{directory}/-/{name}-1.0.0.tgz", "rb").read()
doc = {"name": name, "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {
    "name": name, "version": "1.0.0", "main": "index.js",
    "dist": {"tarball": f"{registry}{name}/-/{name}-1.0.0.tgz",
             "shasum": hashlib.sha1(tgz).hexdigest(),
             "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()}}}}
json.dump(doc, open(f"{directory}/index.json", "w"))
PY
done

install() {  # $1: round; a new project and a new, empty npm cache each time
  local app=$work/app$1
  mkdir -p "$app"
  echo '{"name": "app", "version": "1.0.0", "dependencies": {"tinypkg": "1.0.0", "smallpkg": "1.0.0"}}' \
    >"$app/package.json"
  (cd "$app" && npm install --registry="$registry" --cache="$work/npm-cache$1" "${proxy_opts[@]}" \
    --userconfig=/dev/null --no-audit --no-fund --no-update-notifier --fetch-retries=0 \
    >"$work/npm$1.log" 2>&1) || { cat "$work/npm$1.log"; echo "FAIL: npm install (round $1)"; exit 1; }
  for name in tinypkg smallpkg; do
    cmp "$app/node_modules/$name/data.txt" "$work/src/$name/package/data.txt" ||
      { echo "FAIL: $name installed wrong (round $1)"; exit 1; }
  done
}

install 1
first=$(origin_requests /npm)
lines_before=$(wc -l <"$work/fanoutd.log")
install 2
second=$(origin_requests /npm)

echo "origin requests: $first in round 1, $((second - first)) in round 2"
round2=$(gets_after_line "$lines_before")
echo "round 2 as fanoutd saw it:"
sed 's/^/  /' <<<"$round2"
for name in tinypkg smallpkg; do
  grep -q "\"GET $logged/npm/$name/-/$name-1.0.0.tgz\" 200 HIT" <<<"$round2" ||
    { echo "FAIL: $name's tarball was not a HIT in round 2"; exit 1; }
done
[ "$second" -eq "$first" ] || { echo "FAIL: the origin saw requests in round 2"; exit 1; }
echo "PASS"
