#!/bin/bash
# Checks the Dockerfile's runtime stage against the fanoutd binary it ships,
# on machines where no Docker engine can build the image:
#   - every shared library the binary needs comes from a package the
#     runtime stage installs (or one they depend on, or one every Debian
#     image has);
#   - the image runs as a non-root user, keeps the cache directory as a
#     volume, reads /etc/fanout/fanout.json, and the shipped config listens
#     on the exposed port and uses that cache directory.
# Usage: scripts/check-dockerfile.sh path/to/fanoutd
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
binary="${1:?usage: $0 path/to/fanoutd}"
dockerfile="$here/Dockerfile"
config="$here/config/fanout.json"
failures=0
fail() { echo "check-dockerfile: $*" >&2; failures=$((failures + 1)); }

# The runtime stage is everything after the last FROM.
runtime="$(awk '/^FROM /{stage=""} {stage = stage $0 "\n"} END{printf "%s", stage}' "$dockerfile")"

# Packages named on the runtime stage's apt-get install line(s).
listed="$(printf '%s' "$runtime" | tr '\\' ' ' | tr -s ' \t' '\n' |
  awk '/^install$/{on=1; next} /^&&$/{on=0} on && !/^-/{print}' | sort -u)"
[ -n "$listed" ] || fail "no apt-get install in the runtime stage"

# What those packages bring with them, plus what every Debian image has.
provided="$( { echo "$listed"
  # shellcheck disable=SC2086  # one word per package
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $listed 2>/dev/null | grep -v '^ ' || true
  dpkg-query -W -f='${Package} ${Priority} ${Essential}\n' |
    awk '$2 == "required" || $3 == "yes" {print $1}'
} | sed 's/:.*//' | sort -u)"

# Packages owning the libraries the binary loads.
for lib in $(ldd "$binary" | awk '/=>/ {print $3}'); do
  owner="$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null ||
    dpkg -S "/usr$lib" 2>/dev/null || true)"
  owner="${owner%%:*}"
  if [ -z "$owner" ]; then
    fail "$lib is not from a Debian package"
  elif ! grep -qx "$owner" <<<"$provided"; then
    fail "$lib comes from $owner, which the runtime stage does not install"
  fi
done

grep -Eq '^USER +[a-z]' <<<"$runtime" && ! grep -Eq '^USER +(root|0)$' <<<"$runtime" ||
  fail "the runtime stage does not switch to a non-root USER"
grep -Eq '^VOLUME +/var/cache/fanout' <<<"$runtime" || fail "no VOLUME /var/cache/fanout"
grep -q '"--config", "/etc/fanout/fanout.json"' <<<"$runtime" ||
  fail "the ENTRYPOINT does not read /etc/fanout/fanout.json"
grep -Eq '^COPY config/fanout.json /etc/fanout/fanout.json' <<<"$runtime" ||
  fail "the default config is not copied to /etc/fanout/fanout.json"
port="$(sed -n 's/.*"listen": *"[^"]*:\([0-9]*\)".*/\1/p' "$config")"
grep -Eq "^EXPOSE +$port\$" <<<"$runtime" || fail "EXPOSE does not match the config's port $port"
grep -q '"cache_dir": *"/var/cache/fanout"' "$config" ||
  fail "config/fanout.json's cache_dir is not the image's volume"
"$binary" --check-config --config "$config" >/dev/null ||
  fail "config/fanout.json does not pass fanoutd --check-config"

if [ "$failures" -gt 0 ]; then
  echo "check-dockerfile: $failures problem(s)" >&2
  exit 1
fi
echo "check-dockerfile: runtime stage provides all $(ldd "$binary" | grep -c '=>') libraries of $binary; user, volume, config and port agree"
