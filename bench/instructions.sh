#!/usr/bin/env bash
# Instructions per request, a figure that does not move with this shared
# machine's noise: the gateway runs under callgrind (1 worker) in front of
# one demo backend, h2load sends a fixed number of requests, and the
# instruction count of a short run is subtracted from a long one's, so
# start-up, handshakes and shutdown cancel out:
#   per request = (Ir(long) - Ir(short)) / (long - short requests)
# Scenarios (as in ../shared/bench): s4 plain HTTP/1.1 keep-alive, s1
# HTTPS/1.1 keep-alive, s1c the same with a valid sticky cookie, s3 HTTP/2
# (4 connections x 8 streams).
#   bench/instructions.sh                 # all four, 500 and 2500 requests
#       (with SAG_INSTR_S3 past 125 streams in flight, 4x and 16x that many)
#   bench/instructions.sh s1 s3           # some
#   SAG_INSTR_SHORT=200 SAG_INSTR_LONG=1200 bench/instructions.sh s4
#   SAG_INSTR_S3="16 32" bench/instructions.sh s3   # the harness's S3 concurrency
#   SAG_INSTR_KEEP=/tmp/prof bench/instructions.sh s3   # keeps both runs'
#       callgrind files there (bench/callgrind_diff.py SHORT LONG: one request's
#       profile; callgrind_annotate --inclusive=yes LONG: the whole run's)
#   SAG_INSTR_AS=harness bench/instructions.sh s3   # as the peer harness
#       runs sag: its static nginx answer instead of the demo backend (Date,
#       Server, X-Backend, X-Seen-XFF; no per-request Set-Cookie),
#       X-Forwarded-For on, a pool of 1,024 idle connections, no access log
#   SAG_INSTR_CACHE=1 bench/instructions.sh s3      # + simulated L1 misses per
#       request (callgrind --cache-sim: I1 fetch misses, D1 read and write
#       misses), where instructions alone don't explain the CPU time;
#       SAG_INSTR_CACHE=2 adds --branch-sim: mispredicted conditional and
#       indirect branches per request. The last-level cache callgrind
#       simulates is this machine's L2 (sysfs; SAG_INSTR_LL="bytes,ways,line"
#       to choose): its misses (DLmr, DLmw) are what a working set larger
#       than one core's cache costs, where the L1 figures count every cold line
#   SAG_INSTR_AS=harness SAG_INSTR_PEER=nghttpx bench/instructions.sh s3
#       # the same figures for nghttpx (one process, one worker, configured
#       # as ../shared/bench's adapter configures it) instead of sag: the
#       # peer's instructions per request under the same load
# Needs the Release build (build/bin/gateway, build/bin/gateway-demo-backend),
# valgrind and h2load (nghttp2-client).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${SAG_INSTR_BIN:-$root/build/bin}  # another build's bin/ (one with -g, to annotate)
read -r h2_conns h2_streams <<<"${SAG_INSTR_S3:-4 8}"
# The short run must pass the warm-up: with S3's streams in flight the
# upstream pool grows to one connection per stream, so a short run of fewer
# than a few times that many requests leaves connects (thousands of
# instructions each) in the difference: 16 x 32 measured 500/2500 requests
# 300 to 500 instructions higher, and noisier, than 2048/8192.
in_flight=$((h2_conns * h2_streams))
short=${SAG_INSTR_SHORT:-$((4 * in_flight > 500 ? 4 * in_flight : 500))}
long=${SAG_INSTR_LONG:-$((4 * short > 2500 ? 4 * short : 2500))}
cache=${SAG_INSTR_CACHE:-0}
peer=${SAG_INSTR_PEER:-}
cache_flag=()
l2=/sys/devices/system/cpu/cpu0/cache/index2
ll=${SAG_INSTR_LL:-}
if [ -z "$ll" ] && [ -r $l2/size ] && [ "$(cat $l2/level)" = 2 ]; then
  l2_kib=$(cat $l2/size)
  ll="$(( ${l2_kib%K} * 1024 )),$(cat $l2/ways_of_associativity),$(cat $l2/coherency_line_size)"
fi
[ "$cache" = 1 ] && cache_flag=(--cache-sim=yes)
[ "$cache" = 2 ] && cache_flag=(--cache-sim=yes --branch-sim=yes)
[ "$cache" != 0 ] && [ -n "$ll" ] && cache_flag+=(--LL="$ll")
case $peer in
  "") ;;
  nghttpx)
    [ "${SAG_INSTR_AS:-}" = harness ] || { echo "SAG_INSTR_PEER needs SAG_INSTR_AS=harness" >&2; exit 2; }
    [ -x /usr/sbin/nghttpx ] || { echo "needs nghttpx (nghttp2-proxy)" >&2; exit 2; } ;;
  *) echo "SAG_INSTR_PEER: only nghttpx" >&2; exit 2 ;;
esac
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(s4 s1 s1c s3)
for tool in valgrind h2load openssl; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done
[ -n "$peer" ] || [ -x "$bin/gateway" ] || { echo "build first: $bin/gateway is missing" >&2; exit 2; }

source "$root/bench/common.sh"
bench_work sag-instr
make_cert "$work/certs"
backend_port=$(free_port)
extra="access_log: {path: /dev/null}"
pool=""
if [ "${SAG_INSTR_AS:-}" = harness ]; then
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "needs nginx" >&2; exit 2; }
  mkdir -p "$work/nginx/tmp"
  cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  server_tokens off;
  default_type text/plain;
  client_body_temp_path $work/nginx/tmp;
  proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp;
  scgi_temp_path $work/nginx/tmp;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$backend_port;
    location / {
      add_header X-Backend b1;
      add_header X-Seen-XFF "\$http_x_forwarded_for";
      return 200 "$(head -c 64 /dev/zero | tr '\0' x)
";
    }
  }
}
EOF
  PATH=$PATH:/usr/sbin nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
  extra=$'forwarded: {x_forwarded_for: true}\naccess_log: {path: ""}'
  pool="    pool: {max_idle_per_server: 1024, idle_timeout: 120s}"
else
  "$bin/gateway-demo-backend" --name s1 --port "$backend_port" --bind 127.0.0.1 >/dev/null 2>&1 &
fi
pids+=($!)

# nghttpx's configuration file for plain port $1 and TLS port $2 (as the
# peer harness's adapter writes it, in one process: no master to fork).
nghttpx_conf() {
  cat >"$work/nghttpx.conf" <<EOF
frontend=127.0.0.1,$2
frontend=127.0.0.1,$1;no-tls
backend=127.0.0.1,$backend_port;;proto=http/1.1;affinity=cookie;affinity-cookie-name=SRV;affinity-cookie-path=/
private-key-file=$work/certs/site.key
certificate-file=$work/certs/site.crt
workers=1
single-process=yes
add-x-forwarded-for=yes
frontend-keep-alive-timeout=120s
backend-keep-alive-timeout=60s
tls13-ciphers=TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
no-ocsp=yes
errorlog-file=$work/nghttpx-error.log
EOF
  echo "$work/nghttpx.conf"
}

# Instructions the proxy ran for `n` requests of scenario $1.
run_once() {
  local scenario=$1 n=$2 http_port https_port cfg out gw
  http_port=$(free_port)
  https_port=$(free_port)
  cfg=$work/gw.yaml
  {
    cat <<EOF
workers: 1
listeners:
  - {name: http, bind: "127.0.0.1:$http_port", backend: app}
  - name: https
    bind: "127.0.0.1:$https_port"
    tls: {certificates: certs/, alpn: [h2, http/1.1]}
    backend: app
$extra
EOF
    sag_backend_yaml "$backend_port" "$pool"
  } >"$cfg"
  out=$work/callgrind.$scenario.$n
  local proxy=("$bin/gateway" --config "$cfg")
  [ "$peer" = nghttpx ] && proxy=(/usr/sbin/nghttpx "--conf=$(nghttpx_conf "$http_port" "$https_port")")
  valgrind --tool=callgrind ${cache_flag[@]+"${cache_flag[@]}"} --callgrind-out-file="$out" "${proxy[@]}" \
    >/dev/null 2>"$work/valgrind.log" &
  gw=$!
  wait_port "$https_port" || true
  local cookie=()
  if [ "$scenario" = s1c ]; then
    local value
    value=$(curl -sk -o /dev/null -D - "https://127.0.0.1:$https_port/" |
      sed -n 's/^[Ss]et-[Cc]ookie: SRV=\([^;]*\).*/\1/p' | tr -d '\r')
    cookie=(-H "cookie: SRV=$value")
  fi
  case $scenario in
    s4) h2load --h1 -c 1 -n "$n" "http://127.0.0.1:$http_port/" >"$work/h2load.log" ;;
    s1 | s1c) h2load --h1 -c 1 -n "$n" "${cookie[@]}" "https://127.0.0.1:$https_port/" >"$work/h2load.log" ;;
    s3) h2load -c "$h2_conns" -m "$h2_streams" -n "$n" "https://127.0.0.1:$https_port/" >"$work/h2load.log" ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
  esac
  grep -q "requests: $n total, $n started, $n done, $n succeeded" "$work/h2load.log" ||
    { cat "$work/h2load.log" >&2; echo "h2load did not complete $n requests" >&2; exit 1; }
  kill -TERM "$gw"
  wait "$gw" || true
  sed -n 's/^summary: //p; s/^totals: //p' "$out" | head -1
}

# Events per request of a callgrind summary line pair: Ir, or with the cache
# simulation Ir I1mr D1mr D1mw DLmr DLmw (fields 1, 4, 5, 6, 8, 9), and with
# the branch simulation too Bcm Bim (fields 11, 13).
per_request() {
  python3 - "$1" "$2" "$3" "$cache" <<'PY'
import sys
a, b, n, cache = sys.argv[1].split(), sys.argv[2].split(), int(sys.argv[3]), sys.argv[4]
idx = {"1": [0, 3, 4, 5, 7, 8], "2": [0, 3, 4, 5, 7, 8, 10, 12]}.get(cache, [0])
print(" ".join("%12d" % ((int(b[i]) - int(a[i])) // n) for i in idx))
PY
}

if [ "$cache" = 2 ]; then
  printf '%-5s %12s %12s %12s %12s %12s %12s %12s %12s\n' scenario Ir/request I1miss/req D1rmiss/req \
    D1wmiss/req LLrmiss/req LLwmiss/req Bcmiss/req Bimiss/req
elif [ "$cache" = 1 ]; then
  printf '%-5s %12s %12s %12s %12s %12s %12s\n' scenario Ir/request I1miss/req D1rmiss/req D1wmiss/req \
    LLrmiss/req LLwmiss/req
else
  printf '%-5s %14s %14s %12s\n' scenario "Ir($short)" "Ir($long)" "Ir/request"
fi
for s in "${scenarios[@]}"; do
  a=$(cd "$work" && run_once "$s" "$short")
  b=$(cd "$work" && run_once "$s" "$long")
  if [ -n "${SAG_INSTR_KEEP:-}" ]; then
    mkdir -p "$SAG_INSTR_KEEP"
    cp "$work/callgrind.$s.$short" "$work/callgrind.$s.$long" "$SAG_INSTR_KEEP/"
  fi
  if [ "$cache" != 0 ]; then
    printf '%-5s %s\n' "$s" "$(per_request "$a" "$b" $((long - short)))"
  else
    printf '%-5s %14s %14s %12s\n' "$s" "${a%% *}" "${b%% *}" "$(per_request "$a" "$b" $((long - short)))"
  fi
done
