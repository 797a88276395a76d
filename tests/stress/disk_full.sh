#!/usr/bin/env bash
# Runs fanout_stress --scenario disk-full with fanoutd's cache on a small
# file system of its own, so that fetches run out of space (ENOSPC).
#   tests/stress/disk_full.sh build/fanout_stress [more fanout_stress flags]
# FANOUT_STRESS_DISK_FS: ext4 (default: an image on a loop device, ENOSPC
# the way a disk gives it; where loop devices are missing, tmpfs is used)
# or tmpfs; FANOUT_STRESS_DISK_MIB: its size (default 48). The known
# ENOSPC crash showed on ext4 (within 20 rounds) and never on tmpfs.
# Mounting needs root (or CAP_SYS_ADMIN); without it the test is skipped
# (exit 77, ctest's SKIP_RETURN_CODE).
set -uo pipefail
stress=$1; shift
fs=${FANOUT_STRESS_DISK_FS:-ext4}
size=${FANOUT_STRESS_DISK_MIB:-48}
dir=$(mktemp -d /tmp/fanout-stress-disk.XXXXXX)
image=
skip() { rm -rf "$dir" ${image:+"$image"}; echo "SKIP: $1"; exit 77; }
case $fs in
  tmpfs)
    mount -t tmpfs -o "size=${size}m" fanout-stress "$dir" 2>/dev/null ||
      skip "cannot mount a ${size} MiB tmpfs for the cache (needs root)"
    ;;
  ext4)
    image=$(mktemp /tmp/fanout-stress-disk.XXXXXX.img)
    truncate -s "${size}M" "$image"
    if ! { mkfs.ext4 -q -F "$image" >/dev/null 2>&1 && mount -o loop "$image" "$dir" 2>/dev/null; }; then
      rm -f "$image"; image=
      echo "no loop-mounted ext4 here: the cache goes on a tmpfs"
      mount -t tmpfs -o "size=${size}m" fanout-stress "$dir" 2>/dev/null ||
        skip "cannot mount a file system for the cache (needs root)"
    fi
    ;;
  *) echo "FANOUT_STRESS_DISK_FS must be tmpfs or ext4" >&2; exit 2 ;;
esac
trap 'umount "$dir"; rmdir "$dir"; rm -f ${image:+"$image"}' EXIT
# A directory of its own: fanoutd refuses a non-empty one that is not a
# fanout cache (ext4 has lost+found).
mkdir "$dir/cache"
"$stress" --scenario disk-full --cache-dir "$dir/cache" "$@"
