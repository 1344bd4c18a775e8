#!/usr/bin/env bash
# Instructions per full TLS handshake (S2e's shape), sag against HAProxy:
# each proxy runs under callgrind (1 thread) in front of one demo backend,
# and the harness's tlsload makes new connections, each a full handshake
# (ECDSA P-256, no resumption) and one "Connection: close" GET. Two runs of
# different lengths per proxy; start-up and shutdown cancel out:
#   per handshake = (Ir(long) - Ir(short)) / (handshakes(long) - handshakes(short))
# The difference between the two proxies is what sag adds to OpenSSL's work.
#   bench/handshake_instructions.sh
#   SAG_HS_KEEP=/tmp/hs bench/handshake_instructions.sh   # keeps both runs'
#       callgrind files, named after their handshake counts, for
#       bench/callgrind_diff.py (one handshake's profile):
#       callgrind_diff.py /tmp/hs/callgrind.sag.short.N /tmp/hs/callgrind.sag.long.M
#   SAG_HS_BIN=/tmp/build-g/bin bench/handshake_instructions.sh   # another
#       build's gateway (one with -g, for line counts)
# Needs the Release build, valgrind, haproxy, a C compiler and the harness's
# tools/tlsload.c (../shared/bench/peers, or SAG_TLSLOAD_SRC).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${SAG_HS_BIN:-$root/build/bin}
src=${SAG_TLSLOAD_SRC:-$root/../shared/bench/peers/tools/tlsload.c}
for tool in valgrind cc openssl; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$haproxy" ] || { echo "needs haproxy" >&2; exit 2; }
[ -f "$src" ] || { echo "needs tlsload.c: $src" >&2; exit 2; }
[ -x "$bin/gateway" ] || { echo "build first: $bin/gateway is missing" >&2; exit 2; }

source "$root/bench/common.sh"
bench_work sag-hs
cc -O2 -o "$work/tlsload" "$src" -lssl -lcrypto -lpthread
make_cert "$work/certs"
cat "$work/certs/site.crt" "$work/certs/site.key" >"$work/haproxy.pem"
backend_port=$(free_port)
"$bin/gateway-demo-backend" --name s1 --port "$backend_port" --bind 127.0.0.1 >/dev/null 2>&1 &
pids+=($!)

# Handshakes and instructions of proxy $1 over $2 seconds of load:
# prints "HANDSHAKES IR".
run_once() {
  local who=$1 seconds=$2 port out proxy hs
  port=$(free_port)
  out=$work/callgrind.$who.$seconds
  if [ "$who" = sag ]; then
    {
      cat <<EOF
workers: 1
listeners:
  - name: tls
    bind: "127.0.0.1:$port"
    tls: {certificates: certs/, alpn: [h2, http/1.1]}
    backend: app
forwarded: {x_forwarded_for: true}
access_log: {path: ""}
EOF
      sag_backend_yaml "$backend_port" "    pool: {max_idle_per_server: 1024, idle_timeout: 120s}"
    } >"$work/gw.yaml"
    (cd "$work" && exec valgrind --tool=callgrind --callgrind-out-file="$out" "$bin/gateway" \
      --config gw.yaml >/dev/null 2>"$work/valgrind.log") &
  else
    haproxy_bench_cfg "$work/haproxy.cfg" "127.0.0.1:$port ssl crt $work/haproxy.pem alpn h2,http/1.1" \
      "$backend_port"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$haproxy" -f "$work/haproxy.cfg" -db \
      >/dev/null 2>"$work/valgrind.log" &
  fi
  proxy=$!
  wait_port "$port" || true
  hs=$("$work/tlsload" -p "$port" -c 4 -t 1 -d "$seconds" | sed -n 's/^tlsload: \([0-9]*\) handshakes.*/\1/p')
  kill -TERM "$proxy"
  wait "$proxy" || true
  [ -n "$hs" ] || { echo "tlsload reported nothing for $who" >&2; exit 1; }
  echo "$hs $(sed -n 's/^summary: //p; s/^totals: //p' "$out" | head -1)"
}

printf '%-8s %12s %12s %14s\n' proxy "handshakes" "Ir(long)" "Ir/handshake"
for who in sag haproxy; do
  read -r ha ia < <(run_once "$who" 3)
  read -r hb ib < <(run_once "$who" 12)
  if [ -n "${SAG_HS_KEEP:-}" ]; then
    mkdir -p "$SAG_HS_KEEP"
    cp "$work/callgrind.$who.3" "$SAG_HS_KEEP/callgrind.$who.short.$ha"
    cp "$work/callgrind.$who.12" "$SAG_HS_KEEP/callgrind.$who.long.$hb"
  fi
  printf '%-8s %12s %12s %14s\n' "$who" "$ha/$hb" "$ib" "$(( (ib - ia) / (hb - ha) ))"
done
