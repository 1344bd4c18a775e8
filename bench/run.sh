#!/usr/bin/env bash
# Runs the shared side-by-side benchmark (../shared/bench/peers) with sag as
# a peer next to HAProxy (and the no-proxy baseline), for the plain and TLS
# keep-alive scenarios, then prints sag's ratio to HAProxy from that run.
#   bench/run.sh                       # s1 s1c s4, quick preset
#   bench/run.sh --scenarios "s1 s4" --reps 3 --duration 10
# Needs the Release build (build/bin/gateway) and, for peers, the packages
# named in the harness README (haproxy, wrk, nghttp2-client...).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
harness=${SAG_BENCH_HARNESS:-$root/../shared/bench/peers}
[ -x "$root/build/bin/gateway" ] || { echo "build first: build/bin/gateway is missing" >&2; exit 2; }
[ -d "$harness" ] || { echo "benchmark harness not found at $harness" >&2; exit 2; }
out=$(mktemp -d /tmp/sag-bench.XXXXXX)
cd "$root"   # the sag adapter finds build/bin/gateway from here
GATEWAY_BIN="$root/build/bin/gateway" "$harness/run.sh" --quick \
  --peers "${SAG_BENCH_PEERS:-direct haproxy sag}" --scenarios "s1 s1c s4" --modes pinned \
  --out "$out" "$@" >"$out/run.log" 2>&1 || { tail -30 "$out/run.log"; exit 1; }
cat "$out/report.md"
python3 "$root/bench/ratio.py" "$out/results.tsv" sag haproxy
echo "raw results: $out"
