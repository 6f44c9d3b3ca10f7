#!/usr/bin/env bash
# Instructions per commit for one mode: run it twice under cachegrind with
# different lengths and divide the difference, so set-up cancels.
# Usage: bench/instructions.sh MODE [SHORT] [LONG]
set -euo pipefail
mode="${1:?mode: w1, w256, n5 or v4k}"
short="${2:-5000}"
long="${3:-15000}"
bin="$(dirname "$0")/../target/release/paxos-bench"
count() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$bin" "$mode" "$1" 2>&1 >/dev/null |
    sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}
a=$(count "$short")
b=$(count "$long")
# Each run does one warm-up of n/10+1 commits and five timed runs of n.
per_run=$(( (b - a) / ((long - short) * 51 / 10) ))
echo "$mode: $per_run instructions per commit (whole cluster, harness included)"
