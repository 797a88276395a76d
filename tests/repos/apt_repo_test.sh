#!/usr/bin/env bash
# End-to-end: apt through fanoutd, with the shipped Debian mirror example.
#
# Builds a small signed Debian-style repository (two .deb packages made with
# dpkg-deb, indexes by apt-ftparchive with by-hash files, InRelease signed
# by a key made here), serves it from the test origin with no freshness
# headers at all (only ETag and Last-Modified), and puts fanoutd in front
# with config/examples/debian-mirror.json's route rules. Then:
#   1. apt-get update and apt-get download through fanoutd fill the cache;
#   2. with apt's lists and archives emptied, apt-get update and
#      apt-get download again: the origin sees one request, InRelease's
#      revalidation (apt sends "Cache-Control: max-age=0" for it), and
#      everything else, by-hash indexes and packages, is a HIT. apt checks
#      the signature and every hash itself both times.
#
# With "proxy", fanoutd is apt's HTTP proxy instead (Acquire::http::Proxy,
# sources.list naming the origin itself), with
# config/examples/forward-proxy.json's rules for deb.debian.org; the same
# checks hold.
#
#   tests/repos/apt_repo_test.sh FANOUTD_BINARY ORIGIN_BINARY [proxy]
# Needs: apt-get, apt-ftparchive (apt-utils), dpkg-deb, gpg, python3, curl.
set -euo pipefail
fanoutd=$1
origin=$2
mode=${3:-routes}
unset http_proxy HTTP_PROXY no_proxy NO_PROXY
here=$(cd "$(dirname "$0")" && pwd)
example="$here/../../config/examples/debian-mirror.json"
work=$(mktemp -d /tmp/fanout-apt-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  gpgconf --homedir "$work/gnupg" --kill all 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the repository ----
repo=$work/repo
for p in alpha beta; do
  mkdir -p "$work/src/$p/DEBIAN" "$work/src/$p/usr/share/doc/$p" "$repo/pool/main/${p:0:1}/$p"
  printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: fanout tests <tests@example.invalid>\nDescription: fanout test package %s\n' \
    "$p" "$p" >"$work/src/$p/DEBIAN/control"
  head -c 300000 /dev/urandom >"$work/src/$p/usr/share/doc/$p/data"
  dpkg-deb --root-owner-group -Zgzip --build "$work/src/$p" \
    "$repo/pool/main/${p:0:1}/$p/${p}_1.0_all.deb" >/dev/null
done
mkdir -p "$repo/dists/stable/main/binary-amd64" "$repo/dists/stable/main/binary-all"
cat >"$work/generate.conf" <<'EOF'
Dir { ArchiveDir "."; CacheDir "."; };
Default { Packages::Compress ". gzip"; };
TreeDefault { Directory "pool/$(SECTION)"; Contents " "; };
Tree "dists/stable" { Sections "main"; Architectures "amd64 all"; };
EOF
(cd "$repo" && apt-ftparchive generate "$work/generate.conf" >/dev/null &&
  apt-ftparchive -o APT::FTPArchive::DoByHash=true -o APT::FTPArchive::Release::Acquire-By-Hash=yes \
    -o APT::FTPArchive::Release::Suite=stable -o APT::FTPArchive::Release::Codename=stable \
    -o APT::FTPArchive::Release::Architectures="amd64 all" \
    -o APT::FTPArchive::Release::Components=main release dists/stable >"$work/Release" &&
  mv "$work/Release" dists/stable/Release && rm -f ./*.db)
ls "$repo"/dists/stable/main/binary-all/by-hash/SHA256/* >/dev/null
export GNUPGHOME=$work/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key "fanout tests <tests@example.invalid>" \
  rsa2048 sign never 2>/dev/null
gpg --batch --quiet --armor --export >"$work/key.asc"
gpg --batch --quiet --clearsign -o "$repo/dists/stable/InRelease" "$repo/dists/stable/Release"

# ---- origin and fanoutd ----
source "$here/front.sh"
if [ "$mode" = proxy ]; then
  start_proxy "$origin" "$fanoutd" /debian "$repo" deb.debian.org
  mirror=http://127.0.0.1:$origin_port/debian
  proxy=http://127.0.0.1:$port
  logged=http://127.0.0.1:$origin_port  # the access log names whole URLs
else
  start_front "$origin" "$fanoutd" "$example" /debian "$repo"
  mirror=http://127.0.0.1:$port/debian
  proxy=DIRECT
  logged=
fi

# ---- apt, confined to $work ----
echo "deb [signed-by=$work/key.asc] $mirror stable main" >"$work/sources.list"
apt_opts=(-q -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State="$work/apt/state" -o Dir::State::status="$work/apt/status"
  -o Dir::Cache="$work/apt/cache" -o Dir::Log="$work/apt/log"
  -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
  -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" -o Acquire::Languages=none
  -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Acquire::Retries=0
  -o Acquire::http::Proxy="$proxy")
mkdir -p "$work/apt/state/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/log"
touch "$work/apt/status"
run_apt() {  # $1: round
  mkdir -p "$work/download$1"
  apt-get "${apt_opts[@]}" update >"$work/update$1.log" 2>&1 ||
    { cat "$work/update$1.log"; echo "FAIL: apt-get update (round $1)"; exit 1; }
  if grep -E '^(W|E):' "$work/update$1.log"; then echo "FAIL: apt warned (round $1)"; exit 1; fi
  (cd "$work/download$1" && apt-get "${apt_opts[@]}" download alpha beta >"$work/download$1.log" 2>&1) ||
    { cat "$work/download$1.log"; echo "FAIL: apt-get download (round $1)"; exit 1; }
  for p in alpha beta; do
    cmp "$work/download$1/${p}_1.0_all.deb" "$repo/pool/main/${p:0:1}/$p/${p}_1.0_all.deb" ||
      { echo "FAIL: $p differs (round $1)"; exit 1; }
  done
}

run_apt 1
first=$(origin_requests /debian)
rm -rf "$work/apt/state/lists" "$work/apt/cache"
mkdir -p "$work/apt/state/lists/partial" "$work/apt/cache/archives/partial"
lines_before=$(wc -l <"$work/fanoutd.log")
run_apt 2
second=$(origin_requests /debian)

echo "origin requests: $first in round 1, $((second - first)) in round 2"
echo "round 2 as fanoutd saw it:"
round2=$(gets_after_line "$lines_before")
sed 's/^/  /' <<<"$round2"
# Only InRelease may have gone upstream in round 2 (a revalidation).
upstream=$(grep -v ' HIT ' <<<"$round2" | grep -v '/dists/stable/InRelease"' || true)
[ "$(grep -c . <<<"$round2")" -ge 3 ] || { echo "FAIL: fanoutd saw too few requests in round 2"; exit 1; }
[ -z "$upstream" ] || { echo "FAIL: round 2 sent more than InRelease upstream:"; echo "$upstream"; exit 1; }
# apt asks for InRelease with "Cache-Control: max-age=0": one conditional
# request, answered 304, and the stored copy served.
[ $((second - first)) -eq 1 ] || { echo "FAIL: the origin saw $((second - first)) requests in round 2"; exit 1; }
grep -q "\"GET $logged/debian/dists/stable/InRelease\" 200 REVALIDATE" <<<"$round2" ||
  { echo "FAIL: InRelease was not revalidated in round 2"; exit 1; }
for p in alpha beta; do
  grep -q "\"GET $logged/debian/pool/main/${p:0:1}/$p/${p}_1.0_all.deb\" 200 HIT" <<<"$round2" ||
    { echo "FAIL: $p was not a HIT in round 2"; exit 1; }
done
echo "PASS"
