#!/usr/bin/env bash
# The cold fan-out case alone (S1 of the suite): 50 clients joining a
# throttled 200 MB transfer, fanoutd against nginx and Varnish.
#   scripts/bench/cold_fanout.sh            REPEAT=1 scripts/bench/cold_fanout.sh
set -euo pipefail
SCENARIOS=s1 OUT=${OUT:-bench-results/cold_fanout.json} exec "$(dirname "$0")/run.sh"
