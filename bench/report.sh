#!/usr/bin/env bash
# Reproduces docs/benchmarks.md, docs/benchmarks.svg and the README's
# Benchmarks section: this library, omnipaxos and raft-rs under one harness,
# wall clock in-process and instructions per commit under valgrind.
# Takes several minutes on two cores. `--quick` only tries the pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -p paxos-bench
exec target/release/paxos-bench report "$@"
