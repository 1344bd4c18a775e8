#!/usr/bin/env bash
# System calls per request, sag against HAProxy: HTTP/1.1 keep-alive, plain
# (S4's shape) or over TLS (S1's), from wrk (64 connections, pinned to CPU 1;
# the proxy on CPU 0) in front of one demo backend, counted by `perf stat` on
# the kernel's syscall tracepoints for the proxy's process over 4 seconds.
#   bench/syscalls.sh          # plain
#   bench/syscalls.sh tls      # HTTPS/1.1
#   bench/syscalls.sh h2       # HTTP/2 over TLS (S3's shape: h2load, 16
#                              # connections x 32 streams), sag against nghttpx
# Each proxy's user and system CPU per request (from /proc) is printed too:
# system calls are where the kernel's share of the harness's µs/request goes.
# Plain mode also measures bench/floor_proxy.c, a byte relay with none of a
# proxy's own work: the least system time the same traffic costs.
# Needs the Release build, haproxy, wrk, perf (with tracepoint access: root
# or kernel.perf_event_paranoid <= -1), taskset.
set -euo pipefail
mode=${1:-plain}
case $mode in plain | tls | h2) ;; *) echo "usage: $0 [plain|tls|h2]" >&2; exit 2 ;; esac
tls=false
[ "$mode" != plain ] && tls=true
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/bin
tools="haproxy wrk perf taskset"
[ "$mode" = h2 ] && tools="nghttpx h2load perf taskset"
for tool in $tools; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "needs $tool" >&2; exit 2; }
done
[ -x "$bin/gateway" ] || { echo "build first: $bin/gateway is missing" >&2; exit 2; }
[ "$mode" != plain ] || command -v cc >/dev/null || { echo "needs cc" >&2; exit 2; }
perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1 ||
  { echo "perf can't read syscall tracepoints here" >&2; exit 2; }

source "$root/bench/common.sh"
bench_work sag-syscalls
make_cert "$work/certs"
cat "$work/certs/site.crt" "$work/certs/site.key" >"$work/haproxy.pem"
scheme=http
sag_tls=""
hap_tls=""
if $tls; then
  scheme=https
  alpn=http/1.1
  [ "$mode" = h2 ] && alpn=h2
  sag_tls=", tls: {certificates: certs/, alpn: [$alpn]}"
  hap_tls=" ssl crt $work/haproxy.pem alpn http/1.1"
fi
backend_port=$(free_port)
taskset -c 1 "$bin/gateway-demo-backend" --name s1 --port "$backend_port" --bind 127.0.0.1 \
  >/dev/null 2>&1 &
pids+=($!)
sag_port=$(free_port)
hap_port=$(free_port)
{
  cat <<EOF
workers: 1
listeners:
  - {name: front, bind: "127.0.0.1:$sag_port", backend: app$sag_tls}
forwarded: {x_forwarded_for: true}
access_log: {path: ""}
EOF
  sag_backend_yaml "$backend_port" "    pool: {max_idle_per_server: 1024, idle_timeout: 120s}"
} >"$work/gw.yaml"
haproxy_bench_cfg "$work/haproxy.cfg" "127.0.0.1:$hap_port$hap_tls" "$backend_port"

events=""
for e in recvfrom sendto sendmsg recvmsg readv writev read write epoll_wait epoll_ctl futex \
         clock_gettime timerfd_settime getsockopt setsockopt; do
  events="$events${events:+,}syscalls:sys_enter_$e"
done
# Sleeps and page faults are kernel time too, outside any system call's count.
events="$events,context-switches,page-faults"

peers="sag haproxy"
[ "$mode" = h2 ] && peers="sag nghttpx"
if [ "$mode" = plain ]; then
  cc -O2 -o "$work/floor_proxy" "$root/bench/floor_proxy.c" -lssl -lcrypto
  peers="sag haproxy floor"
fi
# Load for $1 seconds on the proxy at $2; prints the requests completed.
load() {
  if [ "$mode" = h2 ]; then
    taskset -c 1 h2load -c16 -m32 -D "$1" "https://127.0.0.1:$2/" | awk '/^requests:/ {print $8}'
  else
    taskset -c 1 wrk -t1 -c64 -d"$1"s "$scheme://127.0.0.1:$2/" | awk '/requests in/ {print $1}'
  fi
}
# utime + stime of process $1 in clock ticks.
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

for who in $peers; do
  case $who in
    sag)
      (cd "$work" && exec taskset -c 0 "$bin/gateway" --config gw.yaml >/dev/null 2>&1) &
      port=$sag_port ;;
    haproxy)
      taskset -c 0 haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 &
      port=$hap_port ;;
    nghttpx)
      taskset -c 0 nghttpx --single-process --workers=1 --no-ocsp --no-via \
        --frontend="127.0.0.1,$hap_port" --backend="127.0.0.1,$backend_port;;proto=http/1.1" \
        --add-x-forwarded-for --errorlog-file=/dev/null --accesslog-file=/dev/null \
        "$work/certs/site.key" "$work/certs/site.crt" >/dev/null 2>&1 &
      port=$hap_port ;;
    floor)
      taskset -c 0 "$work/floor_proxy" "$hap_port" "$backend_port" >/dev/null 2>&1 &
      port=$hap_port ;;
  esac
  proxy=$!
  wait_port "$port" 100 || true
  load 1 "$port" >/dev/null  # warm-up
  perf stat -e "$events" -p "$proxy" -o "$work/perf.$who" &
  counter=$!
  sleep 0.2
  read -r u0 s0 < <(cpu_ticks "$proxy")
  requests=$(load 4 "$port")
  read -r u1 s1 < <(cpu_ticks "$proxy")
  kill -INT "$counter"
  wait "$counter" || true
  kill "$proxy"
  wait "$proxy" 2>/dev/null || true
  hz=$(getconf CLK_TCK)
  awk -v who="$who" -v n="$requests" -v u="$((u1 - u0))" -v s="$((s1 - s0))" -v hz="$hz" 'BEGIN {
      printf "== %s: %d requests; CPU µs per request: user %.2f, system %.2f\n", who, n,
        u * 1e6 / hz / n, s * 1e6 / hz / n }'
  echo "   system calls per request"
  awk -v n="$requests" '/syscalls:sys_enter_/ {
      gsub(",", "", $1); if ($1 + 0 > 0) { sub("syscalls:sys_enter_", "", $2); t += $1; printf "  %-16s %.2f\n", $2, $1 / n } }
    END { printf "  %-16s %.2f\n", "total", t / n }' "$work/perf.$who"
  awk -v n="$requests" '$2 == "context-switches" || $2 == "page-faults" {
      gsub(",", "", $1); printf "  %-16s %.3f\n", $2, $1 / n }' "$work/perf.$who"
done
