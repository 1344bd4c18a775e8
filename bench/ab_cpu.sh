#!/usr/bin/env bash
# Proxy CPU per request, sag against HAProxy and nghttpx, in alternating
# rounds with medians: a steadier figure than one pass of the peer harness
# on a shared machine, where a pass of one peer can land in a noisy minute.
# Each round runs S1 (HTTPS/1.1 keep-alive) and S4 (plain keep-alive) for sag
# and HAProxy (wrk, 64 connections) and S3 (HTTP/2, h2load 16 connections x
# 32 streams) for sag and nghttpx: the proxy pinned to CPU 0, the client to
# CPU 1, three nginx servers behind, configured as the peer harness
# configures them (roundrobin, cookie, X-Forwarded-For). CPU per request is
# the proxy's time over the requests the client completed, printed whole and
# split into user time (the proxy's own work) and system time (the kernel's,
# mostly loopback TCP, which a proxy making the same system calls pays alike).
# S1 and S4 also run through bench/floor_proxy.c, a byte relay that does
# nothing of a proxy's own work (with OpenSSL's SSL_read/SSL_write for S1):
# its figure is the floor under any proxy's (the kernel's share, plus TLS
# records for S1), printed as a ratio to HAProxy, so what a target leaves for
# the proxy's own work can be read off.
#   bench/ab_cpu.sh            # 5 rounds (6 with SAG_AB_BASE)
#   bench/ab_cpu.sh 9          # 9 rounds
#   SAG_AB_BASE=/tmp/base/build/bin bench/ab_cpu.sh
#     also runs that build's gateway (a baseline: another commit) with the
#     same configuration in every round, and prints this build's CPU per
#     request as a ratio to it: how a change is judged on a shared machine.
#   SAG_AB_SCENARIOS="s3" bench/ab_cpu.sh     # only some of s1 s4 s3 (the
#     rounds of peers no chosen scenario needs are skipped)
#   SAG_AB_H2="16 4" bench/ab_cpu.sh          # S3's h2load connections and
#     streams per connection (default 16 32): how the cost per stream moves
#     with the streams in flight
# Needs the Release build, haproxy, nghttpx, nginx, wrk, h2load, openssl,
# taskset, a C compiler.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-5}
for tool in haproxy nghttpx nginx wrk h2load openssl taskset python3 cc; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "needs $tool" >&2; exit 2; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
nghttpx_bin=$(command -v nghttpx || echo /usr/sbin/nghttpx)
[ -x "$root/build/bin/gateway" ] || { echo "build first: $root/build/bin/gateway" >&2; exit 2; }
base=${SAG_AB_BASE:-}
read -r -a chosen <<<"${SAG_AB_SCENARIOS:-s1 s4 s3}"
read -r h2_conns h2_streams <<<"${SAG_AB_H2:-16 32}"
for s in "${chosen[@]}"; do
  case $s in s1 | s4 | s3) ;; *) echo "SAG_AB_SCENARIOS: s1, s4 or s3, not $s" >&2; exit 2 ;; esac
done
# The scenario:client:scheme arguments of round() for those of $@ chosen.
pick() {
  local sc
  for sc in "$@"; do [[ " ${chosen[*]} " == *" ${sc%%:*} "* ]] && echo "$sc"; done
  return 0
}
[ -z "$base" ] || [ -x "$base/gateway" ] || { echo "no gateway in SAG_AB_BASE=$base" >&2; exit 2; }

source "$root/bench/common.sh"
bench_work sag-abcpu
make_cert "$work/certs"
cc -O2 -o "$work/floor_proxy" "$root/bench/floor_proxy.c" -lssl -lcrypto
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
floor_plain=$(free_port); floor_tls=$(free_port)
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
ngx_tls=$(free_port); ngx_plain=$(free_port)
cat >"$work/nghttpx.conf" <<EOF
frontend=127.0.0.1,$ngx_tls
frontend=127.0.0.1,$ngx_plain;no-tls
backend=127.0.0.1,${servers[0]};;proto=http/1.1;affinity=cookie;affinity-cookie-name=SRV;affinity-cookie-path=/
backend=127.0.0.1,${servers[1]};;proto=http/1.1;affinity=cookie;affinity-cookie-name=SRV;affinity-cookie-path=/
backend=127.0.0.1,${servers[2]};;proto=http/1.1;affinity=cookie;affinity-cookie-name=SRV;affinity-cookie-path=/
private-key-file=$work/certs/site.key
certificate-file=$work/certs/site.crt
workers=1
add-x-forwarded-for=yes
frontend-keep-alive-timeout=120s
backend-keep-alive-timeout=60s
no-ocsp=yes
errorlog-file=$work/nghttpx.log
EOF

# Prints "user system" clock ticks of process $1 and its children (nghttpx
# serves from a child process).
ticks() {
  local p
  for p in "$1" $(pgrep -P "$1"); do cat "/proc/$p/stat"; done |
    awk '{u += $14; s += $15} END {print u, s}'
}

# Prints "user system": process $3's CPU microseconds per request over one
# pass of client $1 (wrk or h2load) on URL $2.
measure() {
  local client=$1 url=$2 pid=$3 t0 t1 out reqs
  if [ "$client" = wrk ]; then
    taskset -c 1 wrk -t1 -c16 -d1s "$url" >/dev/null 2>&1  # warm-up
    t0=$(ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c64 -d5s "$url")
    t1=$(ticks "$pid")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  else
    taskset -c 1 h2load -c"$h2_conns" -m"$h2_streams" -D 1 "$url" >/dev/null 2>&1
    t0=$(ticks "$pid")
    out=$(taskset -c 1 h2load -c"$h2_conns" -m"$h2_streams" -D 5 "$url")
    t1=$(ticks "$pid")
    reqs=$(awk '/^requests:/ {print $8}' <<<"$out")
  fi
  python3 -c "
t0, t1, hz = '$t0'.split(), '$t1'.split(), $(getconf CLK_TCK)
print(*(round((int(b) - int(a)) / hz * 1e6 / $reqs, 1) for a, b in zip(t0, t1)))"
}

# One round for one proxy (name, TLS port, plain port, command line): the
# figures of each scenario given as scenario:client:scheme, appended to
# $work/<name> as "scenario user system".
round() {
  local name=$1 tls=$2 plain=$3 cmd=$4 p sc s client scheme port
  shift 4
  [ $# -gt 0 ] || return 0  # nothing chosen for this proxy
  taskset -c 0 bash -c "exec $cmd" >/dev/null 2>&1 &
  p=$!
  wait_port "$plain" 100 || true
  sleep 2  # health checks up
  for sc in "$@"; do
    IFS=: read -r s client scheme <<<"$sc"
    if [ "$scheme" = https ]; then port=$tls; else port=$plain; fi
    echo "$s $(measure "$client" "$scheme://127.0.0.1:$port/" "$p")" >>"$work/$name"
  done
  kill "$p"
  wait "$p" 2>/dev/null || true
}

mapfile -t sag_sc < <(pick s1:wrk:https s4:wrk:http s3:h2load:https)
mapfile -t hap_sc < <(pick s1:wrk:https s4:wrk:http)
mapfile -t ngx_sc < <(pick s3:h2load:https)
mapfile -t floor_tls_sc < <(pick s1:wrk:https)
mapfile -t floor_plain_sc < <(pick s4:wrk:http)
# The proxies of one round, each a function; a round runs them in an order
# rotated by one from the last round's, and with a base, this build and the
# base run back to back, each first in every other round. A fixed order
# showed a bias of its own: the same two builds measured 8 % apart in S3 by
# which ran second (this build first: 0.879 of the base; the base first:
# 1.03).
run_sag() { round sag "$sag_tls" "$sag_plain" "$root/build/bin/gateway --config $work/sag.yaml" "${sag_sc[@]}"; }
run_base() { round base "$sag_tls" "$sag_plain" "$base/gateway --config $work/sag.yaml" "${sag_sc[@]}"; }
run_haproxy() { round haproxy "$hap_tls" "$hap_plain" "haproxy -f $work/hap.cfg" "${hap_sc[@]}"; }
run_nghttpx() { round nghttpx "$ngx_tls" "$ngx_plain" "$nghttpx_bin --conf=$work/nghttpx.conf" "${ngx_sc[@]}"; }
run_floor() {
  round floor "$floor_tls" "$floor_tls" \
    "$work/floor_proxy --tls $work/certs/site.crt $work/certs/site.key $floor_tls ${servers[*]}" \
    "${floor_tls_sc[@]}"
  round floor "$floor_plain" "$floor_plain" "$work/floor_proxy $floor_plain ${servers[*]}" \
    "${floor_plain_sc[@]}"
}
# With a base, an even number of rounds (each build first as often), and a
# multiple of four puts the pair in every position of the round equally.
if [ -n "$base" ] && (( rounds % 2 )); then
  rounds=$(( rounds + 1 ))
  echo "SAG_AB_BASE: $rounds rounds, so that each build runs first as often" >&2
fi
run_builds() {
  if [ -z "$base" ]; then
    run_sag
  elif (( $1 % 2 )); then
    run_sag; run_base
  else
    run_base; run_sag
  fi
}
order=(run_builds run_haproxy run_nghttpx run_floor)
for r in $(seq 1 "$rounds"); do
  for i in "${!order[@]}"; do
    "${order[$(( (i + r - 1) % ${#order[@]} ))]}" "$r"
  done
  echo "round $r of $rounds done" >&2
done

python3 - "$work" <<'EOF'
import os, statistics, sys
def load(name):
    d = {}
    if not os.path.exists(f"{sys.argv[1]}/{name}"):
        return d
    for line in open(f"{sys.argv[1]}/{name}"):
        s, user, system = line.split()
        d.setdefault(s, []).append((float(user), float(system)))
    return d
sag = load("sag")
peer_of = {"s1": "haproxy", "s4": "haproxy", "s3": "nghttpx"}
peers = {p: load(p) for p in set(peer_of.values())}
med = statistics.median
print("| scenario | peer | sag us/req | peer us/req | ratio | sag user | peer user | user ratio | sag system | peer system |")
print("|---|---|---|---|---|---|---|---|---|---|")
for s, p in peer_of.items():
    if s not in sag:
        continue
    a, b = sag[s], peers[p][s]
    at, bt = med([u + k for u, k in a]), med([u + k for u, k in b])
    au, bu = med([u for u, _ in a]), med([u for u, _ in b])
    ak, bk = med([k for _, k in a]), med([k for _, k in b])
    print(f"| {s} | {p} | {at:.1f} | {bt:.1f} | {at / bt:.2f} | {au:.1f} | {bu:.1f} | {au / bu:.2f} | {ak:.1f} | {bk:.1f} |")
print()
import os
if os.path.exists(f"{sys.argv[1]}/base"):
    base = load("base")
    print("| scenario | this build us/req | base us/req | ratio | user | base user | system | base system |")
    print("|---|---|---|---|---|---|---|---|")
    for s in ("s1", "s4", "s3"):
        if s not in sag:
            continue
        a, b = sag[s], base[s]
        at, bt = med([u + k for u, k in a]), med([u + k for u, k in b])
        au, bu = med([u for u, _ in a]), med([u for u, _ in b])
        ak, bk = med([k for _, k in a]), med([k for _, k in b])
        print(f"| {s} | {at:.1f} | {bt:.1f} | {at / bt:.3f} | {au:.1f} | {bu:.1f} | {ak:.1f} | {bk:.1f} |")
    print()
floors = load("floor")
for s in ("s1", "s4"):
    if s not in sag:
        continue
    floor, hap = floors[s], peers["haproxy"][s]
    ft, ht = med([u + k for u, k in floor]), med([u + k for u, k in hap])
    fu, fk = med([u for u, _ in floor]), med([k for _, k in floor])
    st = med([u + k for u, k in sag[s]])
    print(f"{s} floor (bench/floor_proxy.c, a byte relay): {ft:.1f} us/req "
          f"(user {fu:.1f}, system {fk:.1f}) = {ft / ht:.2f}x HAProxy; "
          f"0.70x HAProxy = {0.7 * ht:.1f} us leaves {0.7 * ht - ft:.1f} us above the floor; "
          f"above it sag spends {st - ft:.1f} us, HAProxy {ht - ft:.1f} us "
          f"({(st - ft) / (ht - ft):.2f}x)")
EOF
