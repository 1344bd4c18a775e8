#!/usr/bin/env bash
# The TCP relay's cost (issue 14): redis-benchmark -t get,set -P 16 straight
# to redis-server, through sag (mode: tcp, 1 worker) and through HAProxy
# (mode tcp, 1 thread), three rounds in one run. The proxies run on CPU 1,
# redis-server and redis-benchmark on CPU 0; "proxy CPU" is the proxy's user
# + system time per request (from /proc, 10 ms ticks: about +-4 %).
#   bench/tcp_redis.sh            needs the Release build, redis-server,
#                                 redis-benchmark and haproxy
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
source "$root/bench/common.sh"
rport=$(free_port); sport=$(free_port); hport=$(free_port)
taskset -c 0 redis-server --port $rport --bind 127.0.0.1 --save "" --appendonly no --dir $work >/dev/null &
rpid=$!
cat > $work/sag.yaml <<Y
workers: 1
listeners: [{name: r, bind: "127.0.0.1:$sport", mode: tcp, backend: redis}]
backends:
  - {name: redis, mode: tcp, servers: [{name: r1, address: "127.0.0.1:$rport"}], health_check: {type: none}}
access_log: {path: ""}
Y
taskset -c 1 $root/build/bin/gateway --config $work/sag.yaml 2>/dev/null &
spid=$!
cat > $work/haproxy.cfg <<H
global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
listen redis
  bind 127.0.0.1:$hport
  server r1 127.0.0.1:$rport
H
taskset -c 1 haproxy -f $work/haproxy.cfg -db >/dev/null 2>&1 &
hpid=$!
sleep 1
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
declare -A pid=([sag]=$spid [haproxy]=$hpid)
n=200000
for rep in 1 2 3; do
  for target in direct:$rport sag:$sport haproxy:$hport; do
    name=${target%%:*}; port=${target##*:}
    before=0; [ "$name" != direct ] && before=$(ticks ${pid[$name]})
    out=$(timeout 60 taskset -c 0 redis-benchmark -p $port -t get,set -P 16 -n $n -c 50 -q 2>/dev/null | tr '\r' '\n' | grep -E "^(SET|GET): [0-9.]+ requests per second" | sed 's/ requests per second.*//' | tr '\n' ' ')
    cpu=""
    if [ "$name" != direct ]; then
      after=$(ticks ${pid[$name]})
      # ticks are 10 ms; 2 x n requests
      cpu=$(awk -v t=$((after - before)) -v n=$n 'BEGIN { printf "proxy CPU %.3f us/request", t * 10000 / (2 * n) }')
    fi
    echo "rep $rep $name: $(echo $out | tr '\n' ' ') $cpu"
  done
done
kill $spid $hpid $rpid 2>/dev/null; wait 2>/dev/null; rm -rf $work
