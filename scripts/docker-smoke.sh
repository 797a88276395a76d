#!/usr/bin/env bash
# Builds the Docker image from this tree and checks it end to end, with a
# Docker engine of its own (no registry needed):
#   - installs docker.io and debootstrap if missing; starts dockerd on a
#     socket under FANOUT_DOCKER_DIR (default /tmp/fanout-docker), whose
#     data root is kept between runs (base image and layer cache), and stops
#     it on exit;
#   - makes the debian:12 (and debian:12-slim) base image with debootstrap
#     from the machine's apt mirror, once;
#   - builds the image from the files git knows (tracked, and untracked but
#     not ignored) with --build-arg FANOUT_RUN_TESTS=0: scripts/test.sh ran
#     the suites on the same source already;
#   - runs containers on the host network in front of the test origin
#     (fanout_origin) and checks: MISS then HIT with the origin's bytes; not
#     root (uid 10001); /readyz and the HEALTHCHECK; the cache volume
#     outlives its container; `docker stop` drains a download under way and
#     exits 0.
# Needs root (for dockerd), 2-8 minutes cold, about one warm.
#   scripts/docker-smoke.sh
# Environment:
#   FANOUT_ORIGIN         the fanout_origin binary (default: build-release/ or build/)
#   FANOUT_DOCKER_DIR     the engine's directory (default /tmp/fanout-docker);
#                         rm -rf it (engine stopped) to start from nothing
#   FANOUT_DOCKER_IMAGE   the tag to build (default fanoutd:smoke)
#   FANOUT_DEBIAN_MIRROR  debootstrap's mirror (default: from /etc/apt sources)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$SECONDS

say() { printf 'docker smoke [%3ds]: %s\n' "$((SECONDS - started))" "$*"; }
fail() { printf 'docker smoke: FAILED: %s\n' "$*" >&2; exit 1; }
checks=0
pass() { checks=$((checks + 1)); say "ok $checks - $*"; }

[ "$(id -u)" -eq 0 ] || fail "needs root: it runs its own dockerd (FANOUT_SKIP_DOCKER=1 skips it in scripts/test.sh)"

work=${FANOUT_DOCKER_DIR:-/tmp/fanout-docker}
image=${FANOUT_DOCKER_IMAGE:-fanoutd:smoke}
origin_bin=${FANOUT_ORIGIN:-}
if [ -z "$origin_bin" ]; then
  for candidate in build-release/fanout_origin build/fanout_origin; do
    if [ -x "$candidate" ]; then origin_bin=$root/$candidate; break; fi
  done
fi
[ -x "${origin_bin:-/nonexistent}" ] ||
  fail "no fanout_origin to serve the test bodies: build it (cmake --build build-release --target fanout_origin) or set FANOUT_ORIGIN"

# ---- clean-up, whatever happens from here on -------------------------------
tmp=""
made_policy=0
dockerd_pid=""
origin_pid=""
download_pid=""
volume=""
docker_up=0
readme_ran=0

unmount_under() {  # lazily unmounts every mount point under $1, deepest first
  awk -v dir="$1/" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

stop_pid() {  # stop_pid PID SECONDS: SIGTERM, wait, then SIGKILL
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  [ -n "$download_pid" ] && kill "$download_pid" 2>/dev/null
  if [ "$docker_up" = 1 ]; then
    local ids
    ids=$(timeout 30 docker ps -aq --filter label=fanout-smoke=1)
    if [ "$rc" -ne 0 ]; then
      for c in $ids; do
        echo "--- last lines of container $c's log:" >&2
        timeout 30 docker logs --tail 40 "$c" 2>&1 | sed 's/^/    /' >&2
      done
    fi
    # shellcheck disable=SC2086  # one word per id
    [ -n "$ids" ] && timeout 60 docker rm -f $ids >/dev/null 2>&1
    [ -n "$volume" ] && timeout 30 docker volume rm -f "$volume" >/dev/null 2>&1
    if [ "$readme_ran" = 1 ]; then
      if [ "$rc" -ne 0 ]; then
        echo "--- the README's commands printed:" >&2
        tail -n 40 "$tmp/readme.out" | sed 's/^/    /' >&2
        echo "--- last lines of container fanoutd's log:" >&2
        timeout 30 docker logs --tail 40 fanoutd 2>&1 | sed 's/^/    /' >&2
      fi
      timeout 60 docker rm -f fanoutd >/dev/null 2>&1
      timeout 30 docker volume rm -f fanout-cache >/dev/null 2>&1
    fi
  fi
  if [ -n "$origin_pid" ]; then
    stop_pid "$origin_pid" 5
    wait "$origin_pid" 2>/dev/null
  fi
  if [ -n "$dockerd_pid" ]; then
    stop_pid "$dockerd_pid" 30
    wait "$dockerd_pid" 2>/dev/null
  fi
  unmount_under "$work"
  [ -n "$tmp" ] && rm -rf --one-file-system "$tmp"
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ "$rc" -ne 0 ]; then
    echo "docker smoke: failed after $((SECONDS - started))s (engine log: $work/dockerd.log)" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls "$@" every 0.2 s until it succeeds; fails naming $2 after $1 seconds.
wait_until() {
  local limit=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within ${limit}s"
    sleep 0.2
  done
}

# ---- packages ---------------------------------------------------------------
need=()
command -v dockerd >/dev/null && command -v docker >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  # No service may start from a package install (dockerd runs only as ours).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  mkdir -p "$work"
  if ! { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq \
        --no-install-recommends "${need[@]}"; } >"$work/apt.log" 2>&1; then
    tail -n 30 "$work/apt.log" >&2
    fail "could not install ${need[*]}"
  fi
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; made_policy=0; fi
fi

# ---- the engine ---------------------------------------------------------------
mkdir -p "$work"
exec 9>"$work/lock"
flock -n 9 || fail "another docker-smoke.sh is using $work (set FANOUT_DOCKER_DIR to run one more)"
# A dockerd an earlier, killed run left on this data root would hold it.
if [ -s "$work/dockerd.pid" ]; then
  old=$(cat "$work/dockerd.pid")
  if kill -0 "$old" 2>/dev/null &&
      tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -qF -- "--data-root $work/data "; then
    say "stopping the dockerd an earlier run left (pid $old)"
    stop_pid "$old" 30
  fi
  rm -f "$work/dockerd.pid"
fi
unmount_under "$work"

export DOCKER_HOST="unix://$work/docker.sock"
say "starting dockerd (data root $work/data, log $work/dockerd.log)"
# The default bridge with NAT (dockerd adds its iptables rules): the README's
# commands publish ports with -p and build without --network host, as a user
# would. The checks before them use the host's network, to reach the test
# origin on the host's loopback.
dockerd --data-root "$work/data" --exec-root "$work/exec" -H "$DOCKER_HOST" \
  --pidfile "$work/dockerd.pid" \
  >"$work/dockerd.log" 2>&1 9>&- &
dockerd_pid=$!
deadline=$((SECONDS + 60))
until timeout 10 docker info >/dev/null 2>&1; do
  kill -0 "$dockerd_pid" 2>/dev/null || { tail -n 20 "$work/dockerd.log" >&2; fail "dockerd exited"; }
  [ "$SECONDS" -lt "$deadline" ] || { tail -n 20 "$work/dockerd.log" >&2; fail "dockerd did not answer within 60s"; }
  sleep 0.5
done
docker_up=1
say "dockerd $(docker version -f '{{.Server.Version}}') is up, storage driver $(docker info -f '{{.Driver}}')"
# Containers and volumes an earlier, killed run left.
stale=$(timeout 30 docker ps -aq --filter label=fanout-smoke=1)
# shellcheck disable=SC2086  # one word per id
[ -z "$stale" ] || timeout 60 docker rm -f $stale >/dev/null
stale=$(timeout 30 docker volume ls -q --filter label=fanout-smoke=1)
# shellcheck disable=SC2086
[ -z "$stale" ] || timeout 60 docker volume rm -f $stale >/dev/null

# ---- the base image -------------------------------------------------------------
# The first http(s) URI ending in /debian in the machine's apt sources.
apt_mirror() {
  {
    sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
    grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/' || true
  } | tr -s ' \t' '\n' | grep -E '^https?://[^[:space:]]*/debian/?$' | head -n 1 || true
}
if ! timeout 30 docker image inspect debian:12 >/dev/null 2>&1; then
  mirror=${FANOUT_DEBIAN_MIRROR:-$(apt_mirror)}
  mirror=${mirror:-http://deb.debian.org/debian}
  say "making debian:12: debootstrap --variant=minbase bookworm from $mirror (1-3 min)"
  rootfs=$work/rootfs
  unmount_under "$rootfs"
  rm -rf --one-file-system "$rootfs"
  if ! timeout 900 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
      >"$work/debootstrap.log" 2>&1 9>&-; then
    tail -n 30 "$work/debootstrap.log" >&2
    unmount_under "$rootfs"
    fail "debootstrap failed (log: $work/debootstrap.log)"
  fi
  unmount_under "$rootfs"
  rm -rf --one-file-system "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" --numeric-owner -c . |
    timeout 300 docker import --change 'CMD ["bash"]' - debian:12 >/dev/null
  rm -rf --one-file-system "$rootfs"
fi
timeout 30 docker image inspect debian:12-slim >/dev/null 2>&1 || timeout 30 docker tag debian:12 debian:12-slim
say "base image debian:12 (and -slim): $(docker image inspect -f '{{.Id}}' debian:12 | cut -c1-19)"

# ---- the image ------------------------------------------------------------------
tmp=$(mktemp -d /tmp/fanout-docker-smoke.XXXXXX)
context=$root
if git -c safe.directory="$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # What git knows, uncommitted changes and new files included; never build
  # trees, logs or node_modules (.dockerignore would leave them out too).
  context=$tmp/context
  mkdir "$context"
  git -c safe.directory="$root" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done | tar --null -T - -c | tar -x -C "$context"
fi
say "building $image from $context ($(du -sh "$context" | cut -f1); FANOUT_RUN_TESTS=0; log $work/build.log)"
set +e
timeout 1500 docker build --network host --build-arg FANOUT_RUN_TESTS=0 -t "$image" "$context" 2>&1 |
  tee "$work/build.log" | grep --line-buffered -E '^Step [0-9]+/[0-9]+ : ' |
  while IFS= read -r line; do say "  ${line:0:100}"; done
build_rc=${PIPESTATUS[0]}
set -e
if [ "$build_rc" -ne 0 ]; then
  tail -n 40 "$work/build.log" >&2
  fail "docker build failed (exit $build_rc; log: $work/build.log)"
fi
# Untagged images of earlier builds (a build stage is one); a day's are kept
# as the next build's cache.
timeout 120 docker image prune -f --filter until=24h >/dev/null || true
say "built $image: $(($(docker image inspect -f '{{.Size}}' "$image") / 1000000)) MB"

# ---- the checks -----------------------------------------------------------------
used_ports=" "
free_port() {  # free_port VAR: a TCP port nothing listens on, not handed out before
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 40000))
    case $used_ports in *" $p "*) continue ;; esac
    if [ -z "$(ss -Hltn "sport = :$p")" ]; then
      used_ports="$used_ports$p "
      printf -v "$1" %s "$p"
      return 0
    fi
  done
  fail "no free port found"
}
origin_port="" port="" admin_port=""
free_port origin_port
free_port port
free_port admin_port
origin=http://127.0.0.1:$origin_port
base=http://127.0.0.1:$port
admin=http://127.0.0.1:$admin_port

"$origin_bin" --listen "127.0.0.1:$origin_port" >"$tmp/origin.log" 2>&1 9>&- &
origin_pid=$!
wait_until 10 "the test origin on $origin" curl -fsS --max-time 2 -o /dev/null "$origin/ping?size=1"

# The origin's body of a path does not depend on the query: these are the
# bytes fanoutd must deliver, fetched at full speed.
sha_of() { sha256sum "$1" | cut -c1-64; }
curl -fsS --max-time 60 -o "$tmp/object.origin" "$origin/smoke/object.bin?size=3MB"
curl -fsS --max-time 60 -o "$tmp/drain.origin" "$origin/smoke/drain.bin?size=4MB"

cat >"$tmp/fanout.json" <<EOF
{
  "listen": "127.0.0.1:$port",
  "admin_listen": "127.0.0.1:$admin_port",
  "cache_dir": "/var/cache/fanout",
  "routes": [
    { "prefix": "/", "upstream": "$origin", "default_ttl": "1h" }
  ],
  "shutdown_grace": "20s",
  "log": { "level": "info", "access_log": true }
}
EOF
chmod 644 "$tmp/fanout.json"   # the container's user reads it
volume=fanout-smoke-cache-$$
timeout 30 docker volume create --label fanout-smoke=1 "$volume" >/dev/null

# The config compose mounts passes fanoutd's own validation.
out=$(timeout 60 docker run --rm --network none --label fanout-smoke=1 \
  -v "$root/deploy/fanout.json:/etc/fanout/fanout.json:ro" "$image" --check-config 2>&1) ||
  fail "deploy/fanout.json: $out"
pass "deploy/fanout.json passes --check-config in the image ($out)"

run_fanoutd() {  # run_fanoutd NAME: a container on the cache volume, ready
  local name=$1 deadline=$((SECONDS + 30))
  timeout 60 docker run -d --name "$name" --label fanout-smoke=1 --network host \
    -v "$volume:/var/cache/fanout" -v "$tmp/fanout.json:/etc/fanout/fanout.json:ro" \
    "$image" >/dev/null
  until curl -fsS --max-time 2 -o /dev/null "$admin/readyz" 2>/dev/null; do
    [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] ||
      fail "container $name exited: $(docker inspect -f 'exit code {{.State.ExitCode}}' "$name")"
    [ "$SECONDS" -lt "$deadline" ] || fail "container $name: $admin/readyz not 200 within 30s"
    sleep 0.2
  done
}
get() {  # get URL NAME: headers to $tmp/NAME.h, body to $tmp/NAME.b
  curl -fsS --max-time 60 -D "$tmp/$2.h" -o "$tmp/$2.b" "$1" || fail "GET $1 failed"
}
x_cache() { grep -i '^x-cache:' "$tmp/$1.h" | head -n 1 | cut -d: -f2 | tr -d ' \r'; }
expect_body() {  # expect_body NAME ORIGIN-FILE
  [ "$(sha_of "$tmp/$1.b")" = "$(sha_of "$2")" ] ||
    fail "$1: body differs from the origin's ($(stat -c %s "$tmp/$1.b") bytes, sha256 $(sha_of "$tmp/$1.b"); origin: $(stat -c %s "$2") bytes, sha256 $(sha_of "$2"))"
}

c1=fanout-smoke-$$-1
run_fanoutd "$c1"
url="$base/smoke/object.bin?size=3MB"
get "$url" first
get "$url" second
[ "$(x_cache first)" = MISS ] || fail "first GET $url: X-Cache '$(x_cache first)', expected MISS"
[ "$(x_cache second)" = HIT ] || fail "second GET $url: X-Cache '$(x_cache second)', expected HIT"
expect_body first "$tmp/object.origin"
expect_body second "$tmp/object.origin"
pass "GET twice: X-Cache MISS then HIT, both $(stat -c %s "$tmp/first.b") bytes with the origin's sha256 $(sha_of "$tmp/object.origin" | cut -c1-16)..."

uid=$(timeout 30 docker exec "$c1" id -u) && gid=$(timeout 30 docker exec "$c1" id -g)
[ "$uid:$gid" = 10001:10001 ] || fail "docker exec $c1 id: $uid:$gid, expected 10001:10001"
host_pid=$(docker inspect -f '{{.State.Pid}}' "$c1")
[ "$(tr '\0' ' ' <"/proc/$host_pid/cmdline")" = "/usr/local/bin/fanoutd --config /etc/fanout/fanout.json " ] ||
  fail "the container's first process is not fanoutd: $(tr '\0' ' ' <"/proc/$host_pid/cmdline")"
ids=$(awk '/^[UG]id:/ {printf "%s %s %s %s ", $2, $3, $4, $5}' "/proc/$host_pid/status")
[ "$ids" = "10001 10001 10001 10001 10001 10001 10001 10001 " ] ||
  fail "fanoutd (host pid $host_pid) runs with uids/gids $ids, expected 10001 everywhere"
owner=$(timeout 30 docker exec "$c1" stat -c %u:%g /var/cache/fanout)
[ "$owner" = 10001:10001 ] || fail "/var/cache/fanout in the volume belongs to $owner, expected 10001:10001"
pass "fanoutd runs as uid:gid 10001:10001 (docker exec id; real, effective, saved and fs ids of host pid $host_pid), the cache volume is 10001's"

code=$(curl -sS --max-time 5 -o "$tmp/readyz.b" -w '%{http_code}' "$admin/readyz")
[ "$code" = 200 ] || fail "GET $admin/readyz: $code $(cat "$tmp/readyz.b")"
deadline=$((SECONDS + 45))
while :; do
  health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c1")
  case $health in
    healthy) break ;;
    starting) ;;
    *) fail "container $c1's health is '$health': $(docker inspect -f '{{json .State.Health}}' "$c1")" ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] ||
    fail "container $c1 not healthy within 45s: $(docker inspect -f '{{json .State.Health}}' "$c1")"
  sleep 0.5
done
pass "admin GET /readyz: 200 $(tr -d '\n' <"$tmp/readyz.b"); docker health: healthy"

t0=$(date +%s%N)
timeout 60 docker stop -t 30 "$c1" >/dev/null
stop_ms=$((($(date +%s%N) - t0) / 1000000))
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$c1")
[ "$exit_code" = 0 ] || fail "docker stop $c1 (nothing under way): exit code $exit_code"
timeout 60 docker rm "$c1" >/dev/null
c2=fanout-smoke-$$-2
run_fanoutd "$c2"
get "$url" third
[ "$(x_cache third)" = HIT ] || fail "GET $url from a new container on the same volume: X-Cache '$(x_cache third)', expected HIT"
expect_body third "$tmp/object.origin"
pass "container removed (idle stop: ${stop_ms} ms, exit 0); a new one on volume $volume answers HIT at once, same bytes"

# A 4 MB body the origin sends at 1 MB/s: about 4 s under way when stopped.
drain_url="$base/smoke/drain.bin?size=4MB&rate=1MB"
curl -fsS --max-time 60 -D "$tmp/drain.h" -o "$tmp/drain.b" "$drain_url" 2>"$tmp/drain.err" 9>&- &
download_pid=$!
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
got_some() { [ "$(size_of "$tmp/drain.b")" -ge 262144 ]; }
wait_until 20 "the throttled download's first 256 KiB" got_some
kill -0 "$download_pid" 2>/dev/null || fail "the throttled download ended before the stop: nothing to drain"
at_stop=$(size_of "$tmp/drain.b")
t0=$(date +%s%N)
timeout 60 docker stop -t 30 "$c2" >"$tmp/stop.out" 2>&1 &
stopper_pid=$!
# While it drains, /readyz says so (503) and the download goes on.
draining() { [ "$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$admin/readyz")" = 503 ]; }
wait_until 5 "$admin/readyz answering 503 while draining" draining
kill -0 "$download_pid" 2>/dev/null || fail "the download ended before /readyz said draining"
wait "$stopper_pid" || fail "docker stop -t 30 $c2 failed: $(cat "$tmp/stop.out")"
stop_ms=$((($(date +%s%N) - t0) / 1000000))
download_rc=0
wait "$download_pid" || download_rc=$?
download_pid=""
[ "$download_rc" = 0 ] || fail "the download under way was cut by the stop (curl exit $download_rc: $(cat "$tmp/drain.err"); $(size_of "$tmp/drain.b") of $(size_of "$tmp/drain.origin") bytes)"
[ "$(x_cache drain)" = MISS ] || fail "GET $drain_url: X-Cache '$(x_cache drain)', expected MISS"
expect_body drain "$tmp/drain.origin"
exit_code=$(docker inspect -f '{{.State.ExitCode}} {{.State.OOMKilled}}' "$c2")
[ "$exit_code" = "0 false" ] || fail "after the drain $c2 exited with code/OOM-killed $exit_code, expected 0"
[ "$stop_ms" -lt 20000 ] || fail "docker stop took ${stop_ms} ms, not less than shutdown_grace (20 s)"
pass "docker stop -t 30 with a download under way ($at_stop of $(size_of "$tmp/drain.origin") bytes): /readyz 503 while draining, download complete with the origin's sha256, exit code 0, stop took ${stop_ms} ms (< shutdown_grace 20 s)"

# ---- the README's Docker commands, as written ------------------------------
# In the build context (a copy of this tree), on the default bridge: the
# build reuses the layers built above, the container publishes 8080 and
# 127.0.0.1:8081 on the host, and the README's curl must print ready.
for p in 8080 8081; do
  [ -z "$(ss -Hltn "sport = :$p")" ] ||
    fail "host port $p is in use: the README's docker commands publish it (stop what listens there)"
done
# The README names its container fanoutd and its volume fanout-cache: this
# engine is the script's own, so whatever an earlier run left of them goes.
timeout 60 docker rm -f fanoutd >/dev/null 2>&1 || true
timeout 30 docker volume rm -f fanout-cache >/dev/null 2>&1 || true
readme_commands=$(tests/readme/readme_blocks.sh README.md docker)
[ -n "$readme_commands" ] || fail "README.md has no block marked readme-test: docker"
say "running the README's docker commands in $context"
readme_ran=1
(cd "$context" && timeout 900 bash -euo pipefail -c "$readme_commands") >"$tmp/readme.out" 2>&1 9>&- ||
  fail "the README's docker commands failed (exit $?)"
ready=$(grep -o '"ready": true' "$tmp/readme.out" | head -n 1 || true)
[ -n "$ready" ] || fail "the README's curl .../readyz did not print \"ready\": true"
exit_code=$(docker inspect -f '{{.State.ExitCode}}' fanoutd)
[ "$exit_code" = 0 ] || fail "the README's docker stop: container fanoutd exited with code $exit_code"
pass "the README's docker commands as written: build (from the layer cache), run with -p 8080 and 127.0.0.1:8081 and deploy/fanout.json, readyz printed '$ready', docker stop -t 40 exit code 0"

echo "docker smoke: $checks checks passed in $((SECONDS - started))s"
