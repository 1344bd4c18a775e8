#!/usr/bin/env bash
# Proxy CPU per request, sag against HAProxy, in alternating rounds with
# medians: a steadier figure than one pass of the peer harness on a shared
# machine, where a pass of one peer can land in a noisy minute. Each round
# runs S1 (HTTPS/1.1 keep-alive) and S4 (plain keep-alive) for both proxies:
# the proxy pinned to CPU 0, wrk (64 connections, 1 thread) pinned to CPU 1,
# three nginx servers behind, configured as the peer harness configures
# them (roundrobin, insert cookie, checks, X-Forwarded-For). CPU per request
# is the proxy's user+system time over the requests wrk completed.
#   bench/ab_cpu.sh            # 5 rounds
#   bench/ab_cpu.sh 9          # 9 rounds
# Needs the Release build, haproxy, nginx, wrk, openssl, taskset.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-5}
for tool in haproxy nginx wrk openssl taskset python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "needs $tool" >&2; exit 2; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$root/build/bin/gateway" ] || { echo "build first: $root/build/bin/gateway" >&2; exit 2; }

source "$root/bench/common.sh"
bench_work sag-abcpu
make_cert "$work/certs"
cat "$work/certs/site.crt" "$work/certs/site.key" >"$work/hap.pem"
body=$(python3 -c 'print(("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0" * 17)[:1023])')
servers=()
for i in 1 2 3; do
  port=$(free_port)
  d=$work/backend$i
  mkdir -p "$d"
  cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; server_tokens off; default_type text/plain;
  client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
  uwsgi_temp_path $d; scgi_temp_path $d;
  keepalive_requests 10000000; keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location / { add_header X-Backend b$i; return 200 "$body
"; }
  }
}
EOF
  taskset -c 1 "$nginx_bin" -p "$d" -e "$d/error.log" -c "$d/nginx.conf" >/dev/null 2>&1 &
  pids+=($!)
  servers+=("$port")
done

sag_tls=$(free_port); sag_plain=$(free_port); hap_tls=$(free_port); hap_plain=$(free_port)
cat >"$work/sag.yaml" <<EOF
workers: 1
listeners:
  - {name: tls, bind: "127.0.0.1:$sag_tls", tls: {certificates: "$work/certs", alpn: [h2, http/1.1]}, backend: be}
  - {name: plain, bind: "127.0.0.1:$sag_plain", backend: be}
backends:
  - name: be
    balance: roundrobin
    servers:
      - {name: s1, address: "127.0.0.1:${servers[0]}"}
      - {name: s2, address: "127.0.0.1:${servers[1]}"}
      - {name: s3, address: "127.0.0.1:${servers[2]}"}
    health_check: {type: http, path: /, interval: 1s, timeout: 1s, rise: 2, fall: 3}
    persistence: {cookie: {name: SRV, mode: insert}}
    redispatch: true
    retries: 2
    pool: {max_idle_per_server: 1024, idle_timeout: 120s}
forwarded: {x_forwarded_for: true}
timeouts: {client: 120s, http_request: 10s, keepalive: 120s}
access_log: {path: ""}
EOF
cat >"$work/hap.cfg" <<EOF
global
    nbthread 1
    maxconn 9900
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 120s
    option forwardfor
    option redispatch
    retries 2
    http-reuse always
frontend fe
    bind 127.0.0.1:$hap_tls ssl crt $work/hap.pem alpn h2,http/1.1
    bind 127.0.0.1:$hap_plain
    default_backend be
backend be
    balance roundrobin
    cookie SRV insert indirect nocache
    option httpchk GET /
    server s1 127.0.0.1:${servers[0]} cookie s1 check inter 1s
    server s2 127.0.0.1:${servers[1]} cookie s2 check inter 1s
    server s3 127.0.0.1:${servers[2]} cookie s3 check inter 1s
EOF

# Prints the proxy's CPU microseconds per request for one wrk pass on $1.
measure() {
  local url=$1 pid=$2 t0 t1 out reqs
  taskset -c 1 wrk -t1 -c16 -d1s "$url" >/dev/null 2>&1  # warm-up
  t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  out=$(taskset -c 1 wrk -t1 -c64 -d5s "$url")
  t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  python3 -c "print(round(($t1 - $t0) / $(getconf CLK_TCK) * 1e6 / $reqs, 1))"
}

# One round for one proxy: its S1 and S4 figures, appended to $work/<name>.
round() {
  local name=$1 tls=$2 plain=$3 p
  shift 3
  taskset -c 0 "$@" >/dev/null 2>&1 &
  p=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$plain") 2>/dev/null && break; sleep 0.1; done
  sleep 2  # health checks up
  echo "s1 $(measure "https://127.0.0.1:$tls/" "$p")" >>"$work/$name"
  echo "s4 $(measure "http://127.0.0.1:$plain/" "$p")" >>"$work/$name"
  kill "$p"
  wait "$p" 2>/dev/null || true
}

for r in $(seq 1 "$rounds"); do
  round sag "$sag_tls" "$sag_plain" "$root/build/bin/gateway" --config "$work/sag.yaml"
  round haproxy "$hap_tls" "$hap_plain" haproxy -f "$work/hap.cfg"
  echo "round $r of $rounds done" >&2
done

python3 - "$work/sag" "$work/haproxy" <<'EOF'
import statistics, sys
def load(path):
    d = {}
    for line in open(path):
        s, v = line.split()
        d.setdefault(s, []).append(float(v))
    return d
sag, hap = load(sys.argv[1]), load(sys.argv[2])
print("| scenario | sag us/req (median) | haproxy us/req (median) | ratio | sag rounds | haproxy rounds |")
print("|---|---|---|---|---|---|")
for s in ("s1", "s4"):
    a, b = statistics.median(sag[s]), statistics.median(hap[s])
    print(f"| {s} | {a:.1f} | {b:.1f} | {a / b:.2f} | {' '.join(map(str, sag[s]))} | {' '.join(map(str, hap[s]))} |")
EOF
