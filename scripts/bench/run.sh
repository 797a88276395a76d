#!/usr/bin/env bash
# fanout's benchmark suite, one command: installs nginx, Varnish and wrk
# from Debian (without letting their packages start system services),
# builds fanoutd and the load tools in Release, and runs every scenario
# against fanoutd, nginx (proxy_cache + proxy_cache_lock) and Varnish
# (malloc storage) side by side on loopback. See scripts/bench/suite.py.
#
#   scripts/bench/run.sh                      # everything, 3 runs each
#   SCENARIOS=s1,s3 REPEAT=1 scripts/bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

peers=()
[ -x /usr/sbin/nginx ] || peers+=(nginx-light)
[ -x /usr/sbin/varnishd ] || peers+=(varnish)
command -v wrk >/dev/null || peers+=(wrk)
command -v python3 >/dev/null || peers+=(python3)
if [ ${#peers[@]} -gt 0 ]; then
  # A policy-rc.d that refuses every service start: the suite runs its own
  # instances on loopback ports and stops them by PID.
  had_policy=0
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  status=0
  scripts/install-deps.sh "${peers[@]}" || status=$?
  [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
  [ $status = 0 ] || { echo "bench: installing ${peers[*]} failed ($status)" >&2; exit $status; }
fi
scripts/install-deps.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFANOUT_BUILD_TESTS=OFF -DFANOUT_BUILD_BENCH=ON >/dev/null
cmake --build build-release --target fanoutd fanout_origin fanout_load stream_file_bench >/dev/null
# 1,000 slow clients need more descriptors than the default 1,024.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 scripts/bench/suite.py
