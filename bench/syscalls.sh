#!/usr/bin/env bash
# System calls per request, sag against HAProxy: HTTP/1.1 keep-alive, plain
# (S4's shape) or over TLS (S1's), from wrk (64 connections, pinned to CPU 1;
# the proxy on CPU 0) in front of one demo backend, counted by `perf stat` on
# the kernel's syscall tracepoints for the proxy's process over 4 seconds.
#   bench/syscalls.sh          # plain
#   bench/syscalls.sh tls      # HTTPS/1.1
# Needs the Release build, haproxy, wrk, perf (with tracepoint access: root
# or kernel.perf_event_paranoid <= -1), taskset.
set -euo pipefail
tls=false
[ "${1:-}" = tls ] && tls=true
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/bin
for tool in haproxy wrk perf taskset; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "needs $tool" >&2; exit 2; }
done
[ -x "$bin/gateway" ] || { echo "build first: $bin/gateway is missing" >&2; exit 2; }
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
  sag_tls=', tls: {certificates: certs/, alpn: [http/1.1]}'
  hap_tls=" ssl crt $work/haproxy.pem alpn http/1.1"
fi
backend_port=$(free_port)
taskset -c 1 "$bin/gateway-demo-backend" --name s1 --port "$backend_port" --bind 127.0.0.1 \
  >/dev/null 2>&1 &
pids+=($!)
sag_port=$(free_port)
hap_port=$(free_port)
cat >"$work/gw.yaml" <<EOF
workers: 1
listeners:
  - {name: front, bind: "127.0.0.1:$sag_port", backend: app$sag_tls}
backends:
  - name: app
    servers: [{name: s1, address: "127.0.0.1:$backend_port"}]
    health_check: {type: none}
    persistence: {cookie: {name: SRV, mode: insert}}
    pool: {max_idle_per_server: 1024, idle_timeout: 120s}
forwarded: {x_forwarded_for: true}
access_log: {path: ""}
EOF
cat >"$work/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
  option forwardfor
frontend f
  bind 127.0.0.1:$hap_port$hap_tls
  default_backend b
backend b
  cookie SRV insert indirect nocache
  server s1 127.0.0.1:$backend_port cookie s1
EOF

events=""
for e in recvfrom sendto sendmsg recvmsg readv writev read write epoll_wait epoll_ctl futex \
         clock_gettime timerfd_settime getsockopt setsockopt; do
  events="$events${events:+,}syscalls:sys_enter_$e"
done

for who in sag haproxy; do
  if [ "$who" = sag ]; then
    (cd "$work" && exec taskset -c 0 "$bin/gateway" --config gw.yaml >/dev/null 2>&1) &
    port=$sag_port
  else
    taskset -c 0 haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 &
    port=$hap_port
  fi
  proxy=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  taskset -c 1 wrk -t1 -c16 -d1s "$scheme://127.0.0.1:$port/" >/dev/null  # warm-up
  perf stat -e "$events" -p "$proxy" -o "$work/perf.$who" &
  counter=$!
  sleep 0.2
  requests=$(taskset -c 1 wrk -t1 -c64 -d4s "$scheme://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
  kill -INT "$counter"
  wait "$counter" || true
  kill "$proxy"
  wait "$proxy" 2>/dev/null || true
  echo "== $who: $requests requests; system calls per request"
  awk -v n="$requests" '/syscalls:sys_enter_/ {
      gsub(",", "", $1); if ($1 + 0 > 0) { sub("syscalls:sys_enter_", "", $2); t += $1; printf "  %-16s %.2f\n", $2, $1 / n } }
    END { printf "  %-16s %.2f\n", "total", t / n }' "$work/perf.$who"
done
