#!/usr/bin/env bash
# Bytes per idle TLS connection by part (OpenSSL, socket, coroutine frames,
# buffers): see bench/idle_breakdown.py. Builds the LD_PRELOAD tracker
# (bench/live_heap/live_heap.cc) into a temporary directory, then runs the
# idle-memory scenario under it. Needs the Release build, gdb, addr2line, g++.
#   bench/idle_breakdown.sh
#   SAG_IDLE_CONNS=5000 bench/idle_breakdown.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for tool in gdb addr2line g++; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ -x "$root/build/bin/gateway" ] || { echo "build first: $root/build/bin/gateway is missing" >&2; exit 2; }
source "$root/bench/common.sh"
bench_work sag-live-heap
g++ -O1 -shared -fPIC -o "$work/live_heap.so" "$root/bench/live_heap/live_heap.cc" -ldl -lpthread
SAG_LIVE_HEAP_SO=$work/live_heap.so /usr/bin/python3 "$root/bench/idle_breakdown.py"
