#!/bin/bash
# The Docker image's HEALTHCHECK (installed as /usr/local/bin/fanout-healthcheck):
# healthy while fanoutd's admin listener answers GET /readyz with 200, i.e.
# the cache index is loaded, the cache directory takes a new file, and
# fanoutd is not draining after SIGTERM (then /readyz says 503).
#
# It asks the admin address fanoutd really uses: --admin-listen on fanoutd's
# command line (PID 1, the image's ENTRYPOINT, plus whatever `docker run`
# appended), else "admin_listen" in its --config file, else fanoutd's default
# 127.0.0.1:8081. FANOUT_HEALTHCHECK_ADDR=HOST:PORT overrides all of them.
# A wildcard address (0.0.0.0, [::]) is asked on loopback. With the admin
# listener off ("") there is nothing to ask: the check fails and says so.
# Uses bash's /dev/tcp only: the runtime image has no curl.
set -uo pipefail

config=/etc/fanout/fanout.json
addr=""
addr_from=""
if [ -r /proc/1/cmdline ]; then
  mapfile -d '' args </proc/1/cmdline
  for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
      --admin-listen) addr=${args[i + 1]-}; addr_from=--admin-listen ;;
      --admin-listen=*) addr=${args[i]#*=}; addr_from=--admin-listen ;;
      -c | --config) config=${args[i + 1]-} ;;
      --config=*) config=${args[i]#*=} ;;
    esac
  done
fi
if [ -z "$addr_from" ] && [ -r "$config" ]; then
  # The first "admin_listen" not on a // comment line (the config allows comments).
  line=$(grep -v '^[[:space:]]*//' "$config" | grep -m1 '"admin_listen"' || true)
  if [ -n "$line" ]; then
    addr=$(sed -n 's/.*"admin_listen"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' <<<"$line")
    addr_from=$config
  fi
fi
[ -n "$addr_from" ] || { addr=127.0.0.1:8081; addr_from="fanoutd's default"; }
if [ -n "${FANOUT_HEALTHCHECK_ADDR:-}" ]; then
  addr=$FANOUT_HEALTHCHECK_ADDR
  addr_from=FANOUT_HEALTHCHECK_ADDR
fi
if [ -z "$addr" ]; then
  echo "unhealthy: the admin listener is off ($addr_from), so there is no /readyz to ask" \
    "(set FANOUT_HEALTHCHECK_ADDR, or run with --no-healthcheck)"
  exit 1
fi

host=${addr%:*}
port=${addr##*:}
host=${host#[}
host=${host%]}
case $host in
  "" | 0.0.0.0) host=127.0.0.1 ;;
  :: | 0:0:0:0:0:0:0:0) host=::1 ;;
esac

if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
  echo "unhealthy: cannot connect to the admin listener $host:$port ($addr_from)"
  exit 1
fi
printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$addr" >&3
# HTTP/1.0 without keep-alive: fanoutd closes after the response.
response=$(timeout 2 cat <&3 | head -c 2048 | tr -d '\r')
exec 3<&-
status=${response%%$'\n'*}
if [[ $status =~ ^HTTP/1\.[01]\ 200\  ]]; then
  exit 0
fi
echo "unhealthy: GET http://$host:$port/readyz: ${status:-no answer}; ${response##*$'\n'}"
exit 1
