#!/usr/bin/env bash
# Runs the shared side-by-side benchmark (../shared/bench/peers) with sag as
# a peer next to HAProxy, nginx and nghttpx (when installed) and the no-proxy
# baseline, for the TLS and plain keep-alive scenarios, full handshakes
# (s2e), HTTP/2 (s3: h2load, 16 connections x 32 streams, ALPN h2) and
# memory per idle TLS connection (s5), then prints sag's ratio to HAProxy
# and to nghttpx from that same run (the figures of issue 12's targets).
#   bench/run.sh                       # s1 s1c s2e s3 s4 s5, quick preset
#   bench/run.sh --scenarios "s1 s3" --reps 3 --duration 10
#   SAG_BENCH_PEERS="direct haproxy sag" bench/run.sh     # choose the peers
#   bench/run.sh --dry-run             # print the harness command, run nothing
# Needs the Release build (build/bin/gateway) and, for peers, the packages
# named in the harness README (haproxy, wrk, nghttp2-client for h2load;
# nghttp2-proxy for nghttpx: `apt-get install nghttp2-proxy`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
harness=${SAG_BENCH_HARNESS:-$root/../shared/bench/peers}
nghttpx=${NGHTTPX_BIN:-/usr/sbin/nghttpx}
dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi

peers=${SAG_BENCH_PEERS:-}
if [ -z "$peers" ]; then
  peers="direct haproxy"
  if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then peers="$peers nginx"; fi
  if [ -x "$nghttpx" ]; then
    peers="$peers nghttpx"
  else
    echo "note: $nghttpx not found (apt-get install nghttp2-proxy): running without nghttpx" >&2
  fi
  peers="$peers sag"
fi
refs=()
for p in haproxy nghttpx; do
  case " $peers " in *" $p "*) refs+=("$p") ;; esac
done
cmd=("$harness/run.sh" --quick --peers "$peers" --scenarios "s1 s1c s2e s3 s4 s5" --modes pinned "$@")

if [ "$dry" = 1 ]; then
  printf 'GATEWAY_BIN=%q' "$root/build/bin/gateway"
  printf ' %q' "${cmd[@]}"
  printf ' --out DIR\n'
  echo "then: python3 $root/bench/ratio.py DIR/results.tsv sag ${refs[*]}"
  exit 0
fi
[ -x "$root/build/bin/gateway" ] || { echo "build first: build/bin/gateway is missing" >&2; exit 2; }
[ -d "$harness" ] || { echo "benchmark harness not found at $harness" >&2; exit 2; }
out=$(mktemp -d /tmp/sag-bench.XXXXXX)
cd "$root"   # the sag adapter finds build/bin/gateway from here
GATEWAY_BIN="$root/build/bin/gateway" "${cmd[@]}" --out "$out" >"$out/run.log" 2>&1 ||
  { tail -30 "$out/run.log"; exit 1; }
cat "$out/report.md"
if [ ${#refs[@]} -gt 0 ]; then
  python3 "$root/bench/ratio.py" "$out/results.tsv" sag "${refs[@]}"
fi
echo "raw results: $out"
