#!/usr/bin/env bash
# Instructions per operation of a hot loop, counted by callgrind: the
# example crates/pagealloc/examples/EXAMPLE.rs runs with 0 and with N
# iterations and the difference is divided by N, so setup does not count.
# Usage: scripts/instructions.sh [EXAMPLE] MODE [N]   (EXAMPLE: hot_loops)
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
example=hot_loops
case "${1:-}" in hot_loops*) example=$1; shift ;; esac
mode=${1:?mode}
n=${2:-200000}
cargo build -q --release -p pagealloc --example "$example"
bin=target/release/examples/$example
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$mode" "$1" 2>&1 |
    sed -n 's/.*refs: *//p' | tr -d ,
}
base=$(count 0)
full=$(count "$n")
python3 -c "print(f'$example $mode: {($full - $base) / $n:.0f} instructions per operation')"
