#!/usr/bin/env bash
# A profile-guided (PGO) Release build of the gateway, with g++:
#   bench/pgo_build.sh            # leaves build/bin/gateway, built from a profile
#   bench/pgo_build.sh /srv/sag-build
#   bench/pgo_build.sh build -DSAG_TESTS=OFF   # more arguments: to both
#                                              # cmake configures
# then, for the Debian package, `cd build && cpack -G DEB` as usual.
#
# Three steps (CMakeLists.txt, SAG_PGO):
#   1. <build>/pgo-train: the gateway and the demo backend instrumented
#      (SAG_PGO=generate, no tests), with the compiler and flags of <build>;
#   2. a training load through that gateway, whose profile replaces
#      <build>/pgo-profile once the gateway stopped cleanly;
#   3. <build> configured with SAG_PGO=use and built afresh (tests
#      included: objects built from an older profile are not kept).
# The load is the traffic the gateway is built for, each kind for a fixed
# number of requests (about a minute on two cores): HTTPS/1.1 keep-alive
# with the sticky cookie inserted and with it sent back, plain HTTP/1.1,
# HTTP/2 with 32 streams per connection, full TLS handshakes, request
# bodies on both protocols, and a TCP listener relaying HTTP bytes; three
# demo backends behind, cookie persistence, X-Forwarded-For, HTTP health
# checks, pooled server connections (as the peer harness configures sag).
# Code the load never ran is optimized as in a build without a profile.
#
# Why: the gateway's per-request work is spread over many small functions;
# laid out by the profile, the same requests take 6 to 11 % fewer
# instructions and fewer instruction-cache misses (README, Performance).
# Needs what the build needs, plus h2load (nghttp2-client), curl, openssl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in -*) echo "usage: $0 [build folder] [cmake arguments]" >&2; exit 2 ;; esac
build=$(realpath -m "${1:-$root/build}")
[ $# -eq 0 ] || shift
train=$build/pgo-train
profile=$build/pgo-profile
for tool in cmake ninja g++ h2load curl openssl; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
# What <build> already has cached and would keep: refused before minutes of
# building if it can't take a profile, copied into the training build if it
# changes the code (a profile fits only the code it was made from).
cached() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" 2>/dev/null || true; }
for opt in SAG_SANITIZE SAG_FUZZ; do
  [ "$(cached $opt)" != ON ] || { echo "$build has $opt=ON: use another folder" >&2; exit 2; }
done
same_code=(-DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS=$(cached CMAKE_CXX_FLAGS)")
cxx=$(cached CMAKE_CXX_COMPILER)
[ -z "$cxx" ] || same_code+=("-DCMAKE_CXX_COMPILER=$cxx")

cmake -S "$root" -B "$train" -G Ninja "${same_code[@]}" "$@" -DSAG_TESTS=OFF \
  -DSAG_PGO=generate -DSAG_PGO_DIR="$profile.new" >/dev/null
cmake --build "$train" --target gateway gateway-demo-backend
rm -rf "$profile.new"

source "$root/bench/common.sh"
bench_work sag-pgo
make_cert "$work/certs"
servers=""
for i in 1 2 3; do
  port=$(free_port)
  "$train/bin/gateway-demo-backend" --name "s$i" --port "$port" --bind 127.0.0.1 >/dev/null 2>&1 &
  pids+=($!)
  servers+="      - {name: s$i, address: \"127.0.0.1:$port\"}"$'\n'
done
https_port=$(free_port)
http_port=$(free_port)
tcp_port=$(free_port)
cat >"$work/sag.yaml" <<EOF
workers: 1
listeners:
  - name: https
    bind: "127.0.0.1:$https_port"
    tls: {certificates: certs/, alpn: [h2, http/1.1]}
    backend: app
  - {name: http, bind: "127.0.0.1:$http_port", backend: app}
  - {name: tcp, bind: "127.0.0.1:$tcp_port", mode: tcp, backend: relay}
backends:
  - name: app
    balance: roundrobin
    servers:
$servers    health_check: {type: http, path: /, interval: 1s, timeout: 1s, rise: 2, fall: 3}
    persistence: {cookie: {name: SRV, mode: insert}}
    redispatch: true
    retries: 2
    pool: {max_idle_per_server: 1024, idle_timeout: 120s}
  - name: relay
    mode: tcp
    balance: leastconn
    servers:
$servers    health_check: {type: tcp}
forwarded: {x_forwarded_for: true}
access_log: {path: ""}
EOF
"$train/bin/gateway" --config "$work/sag.yaml" >"$work/gateway.log" 2>&1 &
gw=$!
pids+=("$gw")
# (Listeners open once the first round of health checks is done.)
for p in "$https_port" "$http_port" "$tcp_port"; do
  wait_port "$p" || { cat "$work/gateway.log" >&2; echo "the instrumented gateway did not start" >&2; exit 1; }
done

# Runs h2load with $@ and fails unless every request got a 2xx answer
# (with `any_status` first: any answer; the demo backend answers a POST
# with 404, after reading its body).
load() {
  local out want='\1 succeeded'
  if [ "$1" = any_status ]; then want='[0-9]+ succeeded, [0-9]+ failed, 0 errored, 0 timeout'; shift; fi
  out=$(h2load "$@" 2>&1) || { echo "$out" >&2; return 1; }
  grep -Eq "requests: ([0-9]+) total, \1 started, \1 done, $want" <<<"$out" ||
    { echo "$out" >&2; echo "h2load $*: not every request was answered as expected" >&2; return 1; }
}
https=https://127.0.0.1:$https_port/
cookie=$(curl -sk -o /dev/null -D - "$https" | sed -n 's/^[Ss]et-[Cc]ookie: SRV=\([^;]*\).*/\1/p' | tr -d '\r') ||
  true
[ -n "$cookie" ] || { echo "no sticky cookie from the gateway at $https" >&2; exit 1; }
head -c 65536 /dev/urandom >"$work/body"
echo "training: HTTPS/1.1, HTTPS/1.1 with the cookie, HTTP/1.1, HTTP/2, handshakes, bodies, TCP"
load --h1 -c 16 -n 40000 "$https"
load --h1 -c 16 -n 40000 -H "cookie: SRV=$cookie" "$https"
load --h1 -c 16 -n 40000 "http://127.0.0.1:$http_port/"
load -c 16 -m 32 -n 80000 "$https"
for _ in 1 2 3 4 5; do load --h1 -c 100 -n 100 "$https"; done
load any_status --h1 -c 4 -n 2000 -d "$work/body" "$https"
load any_status -c 4 -m 8 -n 2000 -d "$work/body" "$https"
load --h1 -c 8 -n 10000 "http://127.0.0.1:$tcp_port/"

# The profile is written as each process exits: the gateway's, and the
# demo backends' into the same files for what they share (the Asio
# library); all of them stop before the profile is used.
kill -TERM "$gw"
wait "$gw" || { cat "$work/gateway.log" >&2; echo "the instrumented gateway did not stop cleanly" >&2; exit 1; }
for p in "${pids[@]}"; do
  [ "$p" = "$gw" ] || { kill -TERM "$p"; wait "$p" || true; }
done
pids=()
for f in session/CMakeFiles/sag_session.dir/http2/http2_session.cc.gcda \
         session/CMakeFiles/sag_session.dir/forward/forwarder.cc.gcda \
         tls/CMakeFiles/sag_tls.dir/tls_socket_stream.cc.gcda; do
  [ -s "$profile.new/${f//\//#}" ] || { ls "$profile.new" >&2; echo "no profile for $f" >&2; exit 1; }
done
rm -rf "$profile"
mv "$profile.new" "$profile"
echo "profile: $(find "$profile" -name '*.gcda' | wc -l) files in $profile"

cmake -S "$root" -B "$build" -G Ninja "${same_code[@]}" "$@" -DSAG_PGO=use -DSAG_PGO_DIR="$profile" >/dev/null
cmake --build "$build" --clean-first
echo "built with the profile: $build/bin/gateway"
