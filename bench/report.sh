#!/usr/bin/env bash
# Reproduces docs/benchmarks.md, docs/benchmarks.svg and the README's
# Benchmarks section: this library, omnipaxos and raft-rs under one harness,
# wall clock in-process and instructions per commit under valgrind; then
# this library's durable figures (`paxos bench`, real fdatasync), the
# service against etcd (`bench/compare.sh`), and its
# bare-metal footprint (the example firmware for thumbv7em-none-eabihf and
# thumbv7m-none-eabi, and the replica's size as the firmware reports it
# under QEMU). Takes several minutes on two cores. `--quick` only tries the
# pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
out=target/report
mkdir -p "$out"
rm -f "$out/durable.md" "$out/footprint.md" "$out/compare.md"
cargo build --release -p paxos-bench -p paxos-service --bin paxos-bench --bin paxos

seconds=3
[ "${1:-}" = "--quick" ] && seconds=0.5
echo "durable: paxos bench --seconds $seconds" >&2
{
  echo '```'
  target/release/paxos bench --seconds "$seconds"
  echo '```'
} > "$out/durable.md"

footprint() {
  command -v arm-none-eabi-size >/dev/null || { echo "not measured: needs arm-none-eabi-size (apt-get install binutils-arm-none-eabi)"; return; }
  echo "| target | .text | .data | .bss |"
  echo "|---|---|---|---|"
  for target in thumbv7em-none-eabihf thumbv7m-none-eabi; do
    rustup target add "$target" >/dev/null 2>&1 || true
    (cd firmware && cargo build -q --release --target "$target") >&2
    arm-none-eabi-size "firmware/target/$target/release/paxos-firmware" |
      awk -v t="$target" 'NR == 2 { printf "| `%s` | %s | %s | %s |\n", t, $1, $2, $3 }'
  done
  echo
  if command -v qemu-system-arm >/dev/null; then
    local elf dir line
    elf="$PWD/firmware/target/thumbv7m-none-eabi/release/paxos-firmware"
    dir=$(mktemp -d)
    line=$(cd "$dir" && timeout 5 qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -display none -monitor none \
      -serial null -semihosting-config enable=on,target=native -append 1 -kernel "$elf" 2>/dev/null |
      grep -m1 '^SIZE' || true)
    rm -rf "$dir"
    echo "RAM as the firmware reports it at boot (bytes; \`replica\` is \`size_of::<Replica<Bytes<32>, 3, 8>>()\`, the rest its buffers): \`${line:-not reported}\`"
  else
    echo "RAM: not measured (needs qemu-system-arm)"
  fi
}
echo "footprint: example firmware" >&2
footprint > "$out/footprint.md"

# The service against etcd 3.4 (bench/compare.sh installs etcd and protoc
# when missing); skipped by --quick.
if [ "${1:-}" != "--quick" ]; then
  echo "against etcd: bench/compare.sh" >&2
  COMPARE_SECONDS="$seconds" bash bench/compare.sh > "$out/compare.md" || echo "not measured: bench/compare.sh failed" > "$out/compare.md"
fi

exec target/release/paxos-bench report "$@"
