#!/usr/bin/env bash
# Builds fanout and runs every test suite, on a fresh Debian 12 machine too
# (it installs what is missing first).
#   build/       the whole suite (RelWithDebInfo), the stress test included
#                (ctest -L stress: fanout_stress, tests/stress/)
#   build-asan/  the whole suite under AddressSanitizer + UBSan (stress: a
#                quarter of the time and rounds, objects up to 16 MiB)
#   build-tsan/  the whole suite under ThreadSanitizer: daemon, clients and
#                stress test (stress: half the time and rounds)
#   build-fuzz/  the parsers under libFuzzer (clang), 30 s each (scripts/fuzz.sh)
#   tests/browser  headless Chromium playing media through fanoutd (in build/)
#   tests/repos    apt and npm through fanoutd with the example configs
#   TierTest       three fanoutd nodes behind HAProxy (deploy/haproxy/)
# FANOUT_TEST_QUICK=1 runs only the first.
set -euo pipefail
cd "$(dirname "$0")/.."
# Chromium (and Node.js, if the machine has none) for the browser test; a
# policy-rc.d keeps packages from starting services while they install.
browser_packages=(chromium fonts-liberation python3)
command -v node >/dev/null && command -v npm >/dev/null || browser_packages+=(nodejs npm)
if [ "$(id -u)" -eq 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# clang and its libFuzzer runtime for scripts/fuzz.sh.
fuzz_packages=(clang libclang-rt-14-dev)
# apt's repository tools and gpg for tests/repos (npm comes with the above).
repo_packages=(apt-utils gnupg)
# HAProxy for the tier test (tests/fanoutd_tier_test.cc, deploy/haproxy/).
tier_packages=(haproxy)
scripts/install-deps.sh "${browser_packages[@]}" "${fuzz_packages[@]}" "${repo_packages[@]}" \
  "${tier_packages[@]}"
(cd tests/browser && npm ci --no-audit --no-fund >/dev/null)

jobs=$(nproc)
configure_and_test() {
  local dir=$1 label=$2; shift 2
  echo "=== $dir: configure and build ==="
  cmake -S . -B "$dir" -G Ninja "$@" >"$dir.configure.log" 2>&1 || {
    cat "$dir.configure.log"; exit 1; }
  cmake --build "$dir" -j "$jobs"
  echo "=== $dir: tests ==="
  (cd "$dir" && ctest --output-on-failure -j "${CTEST_JOBS:-$jobs}" --timeout 600 ${label:+-L "$label"})
}

mkdir -p build
configure_and_test build ""
# scripts/run.sh and the Docker image build in Release (-O3), where GCC
# warns (-Werror) about things RelWithDebInfo does not: it must compile.
echo "=== build-release: fanoutd and the demo origin compile ==="
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DFANOUT_BUILD_TESTS=OFF -DFANOUT_BUILD_BENCH=OFF >build-release.configure.log 2>&1 || {
  cat build-release.configure.log; exit 1; }
cmake --build build-release -j "$jobs" --target fanoutd fanout_origin
# The Docker image, built from this tree with its own dockerd (its tests
# skipped: they just ran on the same source) and checked end to end against
# build-release's origin: caching, non-root user, health, volume, drain on
# docker stop. Up to ~8 min cold (debootstrap, image build), seconds warm.
# FANOUT_SKIP_DOCKER=1 leaves it out.
if [ "${FANOUT_TEST_QUICK:-0}" != 1 ] && [ "${FANOUT_SKIP_DOCKER:-0}" != 1 ]; then
  echo "=== docker image: build and smoke test ==="
  FANOUT_ORIGIN="$PWD/build-release/fanout_origin" scripts/docker-smoke.sh
fi
if [ "${FANOUT_TEST_QUICK:-0}" != 1 ]; then
  # One test at a time under ASan: the integration tests run 50 clients and
  # a daemon each, and two of them at once at ASan's speed starve 2 cores
  # (a joiner's first byte then came after its fetch ended, once in four runs).
  FANOUT_STRESS_SCALE=0.25 CTEST_JOBS=1 configure_and_test build-asan "" \
    -DFANOUT_SANITIZE="address;undefined" -DFANOUT_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug
  scripts/fuzz.sh 30
  # TSan needs a fixed address layout on kernels with high mmap entropy; the
  # uninstrumented Debian httplib needs suppressions (see the file). Every
  # fanoutd the tests start inherits TSAN_OPTIONS: a report ends it, and the
  # tests fail on any report in its log.
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan_suppressions.txt" \
  FANOUT_STRESS_SCALE=0.5 \
    setarch "$(uname -m)" -R bash -c "$(declare -f configure_and_test); jobs=$jobs; \
      configure_and_test build-tsan '' -DFANOUT_SANITIZE=thread \
      -DFANOUT_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo"
fi
echo "=== all test suites passed ==="
