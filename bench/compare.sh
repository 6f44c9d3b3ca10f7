#!/usr/bin/env bash
# The `paxos` service against etcd 3.4 on this machine, under the same
# conditions: 3 nodes of each on loopback, both with real fsync and their
# data directories in one temporary directory on one disk, driven by one
# Rust load generator (bench/compare, binary `compare`) through each
# system's own client (the etcd-client crate; paxos_service::Client). For
# 1, 16 and 256 concurrent clients, puts and then linearizable gets, 16-byte
# keys and 64-byte values, it runs an etcd row and then a paxos row (so both
# share the disk and load conditions of that moment) and reports ops/s, p50
# and p99 latency, and the ratio paxos/etcd.
#
#   bench/compare.sh                 # 5 s per row (plus 1 s warm-up each)
#   SECONDS=3 bench/compare.sh       # or COMPARE_SECONDS=3, or --seconds 3
#
# Other settings (environment): CLIENT_LEVELS="1 16 256", OPS="put get",
# SYSTEMS="etcd paxos" (one alone runs that half), COMPARE_BASE_PORT=23100
# (uses BASE..BASE+32), COMPARE_TMPDIR=/var/tmp (where the data directories
# go: a real disk, never tmpfs), CARGO_TARGET_DIR (default target/compare),
# PAXOS_BIN (a prebuilt `paxos` instead of building one).
#
# Installs what it lacks with apt-get (as root): etcd-server and
# etcd-client (etcdctl), and protobuf-compiler (protoc, which the
# etcd-client crate's build script needs). Writes the JSON lines to
# bench/results/compare-<date>.jsonl and prints a markdown table. Every
# process it starts is stopped on exit, however it exits, and its
# temporary directory removed. A full run (12 rows) takes about
# 12 x (SECONDS + 1.5) s plus the builds and about 10 s of start-up: 90 s
# at SECONDS=3 once built. A first build of the compare crate takes about
# 100 s on two cores (etcd-client with tonic and prost about 45 s of it).
set -euo pipefail

# SECONDS is bash's own clock: read the value the caller gave from the
# environment this process started with.
env_seconds=$(tr '\0' '\n' </proc/$$/environ 2>/dev/null | sed -n 's/^SECONDS=//p' | head -1 || true)
row_seconds=${COMPARE_SECONDS:-${env_seconds:-5}}
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) row_seconds=$2; shift 2 ;;
    --seconds=*) row_seconds=${1#--seconds=}; shift ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
client_levels=${CLIENT_LEVELS:-1 16 256}
ops=${OPS:-put get}
systems=${SYSTEMS:-etcd paxos}
base=${COMPARE_BASE_PORT:-23100}

cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/compare}
started_at=$(date +%s)

want() { case " $systems " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# --- what it needs -----------------------------------------------------
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "compare.sh: needs $* (apt-get install $*; run as root to have it done)" >&2
    exit 1
  fi
  if [ -z "${apt_updated:-}" ]; then
    apt-get update -qq >&2
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
if want etcd; then
  command -v etcd >/dev/null || apt_install etcd-server
  command -v etcdctl >/dev/null || apt_install etcd-client
  etcd_version=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')
  case "$etcd_version" in
    3.4.*) ;;
    *) echo "compare.sh: warning: etcd $etcd_version, not 3.4" >&2 ;;
  esac
  # etcd 3.4 refuses to start on architectures other than amd64 and
  # ppc64le unless told this one is meant.
  case "$(uname -m)" in
    x86_64|ppc64le) ;;
    aarch64) export ETCD_UNSUPPORTED_ARCH=arm64 ;;
    armv7l|armv6l) export ETCD_UNSUPPORTED_ARCH=arm ;;
    i?86) export ETCD_UNSUPPORTED_ARCH=386 ;;
    *) export ETCD_UNSUPPORTED_ARCH=$(uname -m) ;;
  esac
fi
command -v protoc >/dev/null || apt_install protobuf-compiler

# --- builds --------------------------------------------------------------
if want paxos; then
  if [ -n "${PAXOS_BIN:-}" ]; then
    paxos=$PAXOS_BIN
  else
    echo "building paxos (release, $CARGO_TARGET_DIR)" >&2
    cargo build --release -p paxos-service --bin paxos >&2
    paxos=$CARGO_TARGET_DIR/release/paxos
  fi
fi
echo "building compare (release, $CARGO_TARGET_DIR)" >&2
(cd bench/compare && cargo build --release >&2)
compare=$CARGO_TARGET_DIR/release/compare

# --- processes and clean-up ----------------------------------------------
pids=()
work=
cleanup() {
  local status=$? pid i
  trap - EXIT INT TERM ERR
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$work" ] && [ -d "$work" ]; then
    if [ "$status" != 0 ]; then
      for log in "$work"/*.log; do
        [ -f "$log" ] || continue
        echo "--- last lines of $(basename "$log")" >&2
        tail -n 15 "$log" >&2
      done
    fi
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo "compare.sh: failed (line $LINENO: $BASH_COMMAND)" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

tmp_parent=${COMPARE_TMPDIR:-/var/tmp}
work=$(mktemp -d "$tmp_parent/paxos-compare.XXXXXX")
if [ "$(stat -f -c %T "$work")" = tmpfs ]; then
  echo "compare.sh: $work is on tmpfs, where fsync is free: set COMPARE_TMPDIR to a real disk" >&2
  exit 1
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $(seq "$base" $((base + 32))); do
  port_free "$p" || { echo "compare.sh: port $p is in use (set COMPARE_BASE_PORT)" >&2; exit 1; }
done

# Waits until "$@" succeeds, up to $1 seconds.
wait_for() {
  local limit=$1 start
  shift
  start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if [ $(($(date +%s) - start)) -ge "$limit" ]; then
      return 1
    fi
    sleep 0.3
  done
}

# --- etcd: 3 members on loopback -------------------------------------------
etcd_endpoints=
if want etcd; then
  cluster=
  for i in 0 1 2; do
    cluster+="${cluster:+,}e$i=http://127.0.0.1:$((base + 10 + i))"
    etcd_endpoints+="${etcd_endpoints:+,}http://127.0.0.1:$((base + i))"
  done
  for i in 0 1 2; do
    etcd --name "e$i" \
      --data-dir "$work/etcd$i" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
      --listen-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
      --listen-client-urls "http://127.0.0.1:$((base + i))" \
      --advertise-client-urls "http://127.0.0.1:$((base + i))" \
      --initial-cluster "$cluster" \
      --initial-cluster-token paxos-compare \
      --initial-cluster-state new \
      >"$work/etcd$i.log" 2>&1 &
    pids+=($!)
  done
  etcd_ready() {
    ETCDCTL_API=3 etcdctl --endpoints="$etcd_endpoints" --command-timeout=2s endpoint health &&
      ETCDCTL_API=3 etcdctl --endpoints="$etcd_endpoints" --command-timeout=2s put compare-ready 1
  }
  wait_for 60 etcd_ready || { echo "compare.sh: etcd did not become ready" >&2; exit 1; }
  echo "etcd $etcd_version ready: $etcd_endpoints" >&2
fi

# --- paxos: 3 nodes on loopback ---------------------------------------------
paxos_endpoints=
if want paxos; then
  "$paxos" keygen "$work/cluster.key" >&2
  for i in 1 2 3; do
    paxos_endpoints+="${paxos_endpoints:+,}127.0.0.1:$((base + 29 + i))"
  done
  for i in 1 2 3; do
    args=(node --id "$i" --listen "127.0.0.1:$((base + 19 + i))" --data-dir "$work/paxos$i"
      --client-listen "127.0.0.1:$((base + 29 + i))" --key-file "$work/cluster.key")
    for j in 1 2 3; do
      [ "$j" = "$i" ] || args+=(--peer "$j=127.0.0.1:$((base + 19 + j))")
    done
    PAXOS_LOG=${PAXOS_LOG:-warn} "$paxos" "${args[@]}" >"$work/paxos$i.log" 2>&1 &
    pids+=($!)
  done
  paxos_ready() { "$paxos" put --nodes "$paxos_endpoints" --timeout 2 compare-ready 1; }
  wait_for 60 paxos_ready || { echo "compare.sh: the paxos nodes did not become ready" >&2; exit 1; }
  echo "paxos ready: $paxos_endpoints" >&2
fi

# --- the rows ------------------------------------------------------------------
mkdir -p bench/results
out=bench/results/compare-$(date +%Y%m%d-%H%M%S).jsonl
: >"$out"
failed=0
# One client object per 128 tasks, for both systems: a paxos Client keeps
# at most 128 calls in flight, so 256 tasks share two of them (and etcd's
# 256 tasks two etcd-client channels).
connections() { echo $((($1 + 127) / 128)); }
for clients in $client_levels; do
  for op in $ops; do
    for system in etcd paxos; do
      want "$system" || continue
      if [ "$system" = etcd ]; then endpoints=$etcd_endpoints; else endpoints=$paxos_endpoints; fi
      echo "row: $system $op, $clients clients, ${row_seconds}s" >&2
      if line=$("$compare" --system "$system" --endpoints "$endpoints" --clients "$clients" \
        --connections "$(connections "$clients")" --seconds "$row_seconds" --op "$op" --value-size 64); then
        echo "$line" >>"$out"
        echo "  $line" >&2
      else
        failed=1
        echo "{\"system\":\"$system\",\"op\":\"$op\",\"clients\":$clients,\"failed\":true}" >>"$out"
        echo "  failed" >&2
      fi
    done
  done
done

# --- the table -------------------------------------------------------------------
echo
echo "etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p' || true) vs paxos: 3 nodes each on loopback, fsync on," \
  "${row_seconds}s per row after 1 s warm-up, 16-byte keys, 64-byte values (${out})"
echo
awk '
  function field(line, name,    m) {
    if (match(line, "\"" name "\":[^,}]*")) {
      m = substr(line, RSTART + length(name) + 3, RLENGTH - length(name) - 3)
      gsub(/"/, "", m)
      return m
    }
    return ""
  }
  function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
  function show(x) { return x == "" ? "-" : x }
  {
    key = field($0, "op") SUBSEP field($0, "clients")
    sys = field($0, "system")
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    if (field($0, "failed") == "true") { ops[key, sys] = ""; p50[key, sys] = ""; p99[key, sys] = ""; err[key, sys] = "failed"; next }
    ops[key, sys] = field($0, "ops_per_s"); p50[key, sys] = field($0, "p50_ms")
    p99[key, sys] = field($0, "p99_ms"); err[key, sys] = field($0, "errors")
  }
  END {
    print "| op | clients | etcd ops/s | paxos ops/s | paxos/etcd ops/s | etcd p50 ms | paxos p50 ms | paxos/etcd p50 | etcd p99 ms | paxos p99 ms | errors etcd/paxos |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, parts, SUBSEP)
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s |\n", parts[1], parts[2],
        show(ops[k, "etcd"]), show(ops[k, "paxos"]), ratio(ops[k, "paxos"], ops[k, "etcd"]),
        show(p50[k, "etcd"]), show(p50[k, "paxos"]), ratio(p50[k, "paxos"], p50[k, "etcd"]),
        show(p99[k, "etcd"]), show(p99[k, "paxos"]), show(err[k, "etcd"]), show(err[k, "paxos"])
    }
  }
' "$out"
echo
echo "compare.sh: done in $(($(date +%s) - started_at)) s" >&2
exit "$failed"
