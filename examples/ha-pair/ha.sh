#!/usr/bin/env bash
# An HA pair of sag gateways with a floating address, on one machine:
# network namespaces stand in for hosts, joined by a bridge inside a
# namespace of its own (nothing touches the machine's own interfaces).
#
#   gw1, gw2        sag + keepalived (VRRP; the address moves when sag's
#                   /healthz stops answering, not only when the host dies)
#   app1..app3      gateway-demo-backend (sessions in memory: DEMOSESSION)
#   redis1, redis2  Redis master and replica, a Sentinel on each
#   sent            the third Sentinel
#   client          where clients run
#
#   examples/ha-pair/ha.sh up | down | status
#   examples/ha-pair/ha.sh kill-sag gw1 | start-sag gw1 | kill-redis-master
#
# Root only. Settings (environment): SAG_BIN_DIR (default build/bin),
# SAG_HA_PREFIX (namespace prefix, default sagha), SAG_HA_NET (the second
# octet of 10.N.0.0/24, default 77), SAG_HA_DIR (state: configs, logs, pids;
# default /tmp/$SAG_HA_PREFIX).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${SAG_BIN_DIR:-$root/build/bin}"
P="${SAG_HA_PREFIX:-sagha}"
N="${SAG_HA_NET:-77}"
dir="${SAG_HA_DIR:-/tmp/$P}"
net="10.$N.0"
vip="$net.100"
hosts=(gw1 gw2 app1 app2 app3 redis1 redis2 sent client)
declare -A ip=([gw1]=2 [gw2]=3 [app1]=11 [app2]=12 [app3]=13 [redis1]=21 [redis2]=22 [sent]=31
               [client]=50)

ns() { echo "$P-$1"; }
in_ns() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }

# Starts a command in host $1's namespace in the background; its pid goes
# to $dir/$2.pid, its output to $dir/$2.log.
start_bg() {
  local h=$1 name=$2; shift 2
  ip netns exec "$(ns "$h")" setsid "$@" >"$dir/$name.log" 2>&1 < /dev/null &
  echo $! >"$dir/$name.pid"
}

stop_pid() {
  local f="$dir/$1.pid" sig=${2:-TERM}
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  kill -"$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
}

wait_tcp() {  # host addr port seconds
  local h=$1 a=$2 p=$3 t=$4
  for _ in $(seq $((t * 10))); do
    in_ns "$h" bash -c "exec 3<>/dev/tcp/$a/$p" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "ha.sh: $a:$p did not answer in ${t}s" >&2
  return 1
}

topology_up() {
  ip netns add "$(ns br)"
  ip -n "$(ns br)" link add br0 type bridge mcast_snooping 0
  ip -n "$(ns br)" link set br0 up
  ip -n "$(ns br)" link set lo up
  for h in "${hosts[@]}"; do
    ip netns add "$(ns "$h")"
    ip -n "$(ns br)" link add "v-$h" type veth peer name eth0 netns "$(ns "$h")"
    ip -n "$(ns br)" link set "v-$h" master br0 up
    ip -n "$(ns "$h")" addr add "$net.${ip[$h]}/24" dev eth0
    ip -n "$(ns "$h")" link set eth0 up
    ip -n "$(ns "$h")" link set lo up
  done
}

write_configs() {
  mkdir -p "$dir"
  (umask 077 && openssl rand -hex 24 >"$dir/secret")
  for g in gw1 gw2; do
    cat >"$dir/$g.yaml" <<EOF
# $g of the HA pair (examples/ha-pair/ha.sh).
workers: 1
listeners:
  - {name: http, bind: "0.0.0.0:80", backend: app}
backends:
  - name: app
    servers:
      - {name: app1, address: "$net.11:9001"}
      - {name: app2, address: "$net.12:9001"}
      - {name: app3, address: "$net.13:9001"}
    persistence:
      cookie: {name: SRV, mode: insert, secret_file: secret}
      learn: {cookie: DEMOSESSION, ttl: 30m}
    health_check: {type: http, path: /healthz, interval: 1s, timeout: 500ms}
affinity_store:
  type: redis
  redis:
    sentinel:
      addresses: ["$net.21:26379", "$net.22:26379", "$net.31:26379"]
      master: sag
    key_secret_file: secret
    timeout: 200ms
admin:
  bind: "127.0.0.1:9901"
access_log: {path: "$dir/$g-access.log"}
EOF
    local prio=150; [ "$g" = gw2 ] && prio=100
    cat >"$dir/$g-keepalived.conf" <<EOF
global_defs {
  router_id $g
  script_user root
  enable_script_security
}
# sag's own health: the address leaves a host whose sag stops answering.
# A dead sag refuses at once, so failover stays at fall x interval; the 2 s
# allowance only keeps a busy machine's slow answer from counting as down.
vrrp_script chk_sag {
  script "/usr/bin/curl -sf -m 2 -o /dev/null http://127.0.0.1:9901/healthz"
  interval 1
  timeout 3
  fall 2
  rise 2
}
vrrp_instance sag {
  state BACKUP
  # A gateway that comes back does not take the address back: moving it
  # would reset the connections the other one holds.
  nopreempt
  interface eth0
  virtual_router_id $N
  priority $prio
  advert_int 1
  virtual_ipaddress {
    $vip/24
  }
  track_script {
    chk_sag
  }
}
EOF
  done
  for s in redis1 redis2 sent; do
    cat >"$dir/sentinel-$s.conf" <<EOF
port 26379
bind 0.0.0.0
protected-mode no
dir $dir
sentinel monitor sag $net.21 6379 2
sentinel down-after-milliseconds sag 1000
sentinel failover-timeout sag 5000
sentinel parallel-syncs sag 1
EOF
  done
}

start_sag() {
  start_bg "$1" "$1-sag" "$bin/gateway" --config "$dir/$1.yaml"
  wait_tcp "$1" 127.0.0.1 9901 10
}

up() {
  [ "$(id -u)" = 0 ] || { echo "ha.sh: run as root (network namespaces)" >&2; exit 1; }
  for tool in keepalived redis-server curl; do
    command -v "$tool" >/dev/null || { echo "ha.sh: $tool is not installed" >&2; exit 1; }
  done
  [ -x "$bin/gateway" ] || { echo "ha.sh: no $bin/gateway (build first)" >&2; exit 1; }
  if ip netns list | grep -q "^$(ns br)\b"; then
    echo "ha.sh: $P is up already (ha.sh down first)" >&2
    exit 1
  fi
  topology_up
  write_configs
  for i in 1 2 3; do
    start_bg "app$i" "app$i" "$bin/gateway-demo-backend" --name "app$i" --port 9001 --bind 0.0.0.0
  done
  start_bg redis1 redis1 redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save "" \
    --appendonly no --dir "$dir"
  wait_tcp redis1 "$net.21" 6379 10
  start_bg redis2 redis2 redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save "" \
    --appendonly no --dir "$dir" --replicaof "$net.21" 6379
  for s in redis1 redis2 sent; do
    start_bg "$s" "sentinel-$s" redis-server "$dir/sentinel-$s.conf" --sentinel
  done
  for s in redis1 redis2 sent; do wait_tcp "$s" "$net.${ip[$s]}" 26379 10; done
  for i in 1 2 3; do wait_tcp "app$i" "$net.1$i" 9001 10; done
  start_sag gw1
  start_sag gw2
  for g in gw1 gw2; do
    start_bg "$g" "$g-keepalived" keepalived -n -l -D -P -f "$dir/$g-keepalived.conf" \
      -p "$dir/$g-keepalived-main.pid" -r "$dir/$g-keepalived-vrrp.pid"
    # gw1 first: with equal standing the higher priority wins.
    [ "$g" = gw1 ] && sleep 1
  done
  # Up once one gateway holds the address and it answers through it (a
  # loaded machine may take a few seconds: the sag checks must pass first).
  local serving=""
  for _ in $(seq 300); do
    if holder >/dev/null &&
       in_ns client curl -s -m 1 -o /dev/null "http://$vip/healthz-of-the-pair" 2>/dev/null; then
      serving=1
      break
    fi
    sleep 0.1
  done
  [ -n "$serving" ] || { echo "ha.sh: no gateway serves $vip after 30 s" >&2; status >&2; exit 1; }
  cat <<TRY
The HA pair is up ($P, state in $dir). The floating address is $vip.

  ip netns exec $P-client curl -si http://$vip/          a session: SRV and DEMOSESSION cookies
  $0 status                                               who holds $vip, what runs
  $0 kill-sag $(holder)                                      SIGKILL the active sag: $vip moves
  $0 kill-redis-master                                    Sentinel promotes the replica
  $0 start-sag gw1                                        bring a gateway back
  ip netns exec $P-gw1 curl -s http://127.0.0.1:9901/     gw1's stats page
  $0 down                                                 stop everything, delete the namespaces
TRY
}

# The gateway holding the floating address (exit 1: none).
holder() {
  for g in gw1 gw2; do
    if ip -n "$(ns "$g")" -o addr show dev eth0 2>/dev/null | grep -q " $vip/"; then
      echo "$g"
      return 0
    fi
  done
  return 1
}

# The tail of every log of the pair, for a test that failed.
logs() {
  for f in "$dir"/*.log; do
    [ -f "$f" ] || continue
    echo "== $(basename "$f")"
    tail -n "${LOG_LINES:-25}" "$f"
  done
}

redis_master() {
  in_ns client redis-cli -h "$net.31" -p 26379 --raw SENTINEL get-master-addr-by-name sag 2>/dev/null |
    head -1
}

status() {
  if ! ip netns list | grep -q "^$(ns br)\b"; then
    echo "$P: down"
    return 0
  fi
  echo "floating address $vip: $(holder || echo nobody)"
  echo "redis master (sentinel): $(redis_master || echo unknown)"
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    local name; name=$(basename "$f" .pid)
    case "$name" in *-keepalived-*) continue ;; esac
    if kill -0 "$(cat "$f")" 2>/dev/null; then echo "  $name: running"; else echo "  $name: stopped"; fi
  done
}

down() {
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  sleep 0.5
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    kill -KILL "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  # Whatever still runs inside the namespaces goes with them.
  for h in "${hosts[@]}" br; do
    if ip netns list | grep -q "^$(ns "$h")\b"; then
      for pid in $(ip netns pids "$(ns "$h")" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$(ns "$h")"
    fi
  done
  if [ -z "${SAG_HA_KEEP:-}" ]; then rm -rf "$dir"; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  holder) holder ;;
  logs) logs ;;
  kill-sag) stop_pid "$2-sag" KILL ;;
  start-sag) start_sag "$2" ;;
  kill-redis-master)
    m=$(redis_master)
    for s in redis1 redis2; do
      if [ "$m" = "$net.${ip[$s]}" ]; then stop_pid "$s" KILL; echo "killed $s ($m)"; fi
    done
    ;;
  *)
    echo "usage: $0 up | down | status | holder | logs | kill-sag GW | start-sag GW | kill-redis-master" >&2
    exit 2
    ;;
esac
