#!/usr/bin/env bash
# Replays fault A's counterexample (MCTraceA.tla) both ways:
#   MCTraceA.cfg       (Bugs = {"LeaderLearns"}): TLC must report exactly an
#                      Agreement violation, at the script's last step (37);
#   MCTraceA_fixed.cfg (Bugs = {}): TLC must find no error: Agreement holds,
#                      the replay reaches the Learn step (35) with n1 a
#                      follower, and no step follows it.
# usage: JAR=/path/to/tla2tools.jar spec/trace_a.sh
# Prints one line per configuration; exits non-zero unless both are as
# expected.  TLC's output and metadata go to a temporary directory.
set -euo pipefail

: "${JAR:?set JAR to the path of tla2tools.jar}"
[[ -f "$JAR" ]] || { echo "trace_a: no such file: $JAR" >&2; exit 2; }

cd "$(dirname "${BASH_SOURCE[0]}")"
tmp=$(mktemp -d /tmp/trace_a.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

LAST_STEP=37   # Acc(n5, n1, 1, 2): n5 decides 111 at slot 1

# run NAME CFG: TLC's output in $tmp/NAME.out, its exit code in $rc.
run() {
    local start=$SECONDS
    rc=0
    java -XX:+UseParallelGC -cp "$JAR" tlc2.TLC -workers 1 -deadlock \
        -metadir "$tmp/$1.meta" -config "$2" MCTraceA.tla >"$tmp/$1.out" 2>&1 || rc=$?
    secs=$((SECONDS - start))
}

ok=0

run buggy MCTraceA.cfg
out=$tmp/buggy.out
errors=$(grep -c '^Error:' "$out" || true)
states=$(grep -c '^State [0-9]*:' "$out" || true)
last_pc=$(grep -o '^/\\ pc = [0-9]*' "$out" | tail -1 | grep -o '[0-9]*$' || true)
# TLC prints "Error: Invariant X is violated." and then
# "Error: The behavior up to this point is:" — nothing else may be an error.
if [[ $rc -ne 0 ]] && grep -qx 'Error: Invariant Agreement is violated.' "$out" \
   && [[ $errors -eq 2 ]] && [[ $last_pc == "$LAST_STEP" ]] \
   && [[ $states -eq $((LAST_STEP + 1)) ]]; then
    echo "MCTraceA.cfg (LeaderLearns): PASS: Agreement violated at step $last_pc (${secs}s)"
else
    echo "MCTraceA.cfg (LeaderLearns): FAIL: expected an Agreement violation at step $LAST_STEP (TLC exit $rc, last step ${last_pc:-none}; output kept in /tmp/trace_a.buggy.out)"
    cp "$out" /tmp/trace_a.buggy.out
    ok=1
fi

run fixed MCTraceA_fixed.cfg
out=$tmp/fixed.out
if [[ $rc -eq 0 ]] && grep -q '^Model checking completed. No error has been found.' "$out" \
   && ! grep -q '^Error:' "$out"; then
    n=$(grep -o '[0-9]* distinct states found' "$out" | tail -1 | grep -o '^[0-9]*' || true)
    echo "MCTraceA_fixed.cfg (fix A): PASS: Agreement holds, n1 follows after step 35, replay stops there ($n states, ${secs}s)"
else
    first=$(grep -m1 '^Error:' "$out" || echo "TLC exit $rc")
    echo "MCTraceA_fixed.cfg (fix A): FAIL: $first (output kept in /tmp/trace_a.fixed.out)"
    cp "$out" /tmp/trace_a.fixed.out
    ok=1
fi

exit $ok
