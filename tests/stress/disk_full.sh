#!/usr/bin/env bash
# Runs fanout_stress --scenario disk-full with fanoutd's cache on a small
# tmpfs, so that a fetch runs out of space mid-body (ENOSPC).
#   tests/stress/disk_full.sh build/fanout_stress [more fanout_stress flags]
# Mounting needs root (or CAP_SYS_ADMIN); without it the test is skipped
# (exit 77, ctest's SKIP_RETURN_CODE).
set -uo pipefail
stress=$1; shift
size=${FANOUT_STRESS_DISK_MIB:-48}
dir=$(mktemp -d /tmp/fanout-stress-disk.XXXXXX)
if ! mount -t tmpfs -o "size=${size}m" fanout-stress "$dir" 2>/dev/null; then
  rmdir "$dir"
  echo "SKIP: cannot mount a ${size} MiB tmpfs for the cache (needs root)"
  exit 77
fi
trap 'umount "$dir" && rmdir "$dir"' EXIT
"$stress" --scenario disk-full --cache-dir "$dir" "$@"
