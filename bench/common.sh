# Shared by the bench scripts (sourced): a work folder removed on exit with
# every process started into `pids`, free loopback ports, a test certificate.
#   source "$(dirname "$0")/common.sh"; bench_work sag-instr
# sets $work and the EXIT trap.

bench_work() {
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until 127.0.0.1:$1 accepts a connection, for at most $2 tenths of a
# second (default 300: valgrind starts slowly); returns 1 when it never did.
wait_port() {
  local _
  for _ in $(seq 1 "${2:-300}"); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# An ECDSA P-256 certificate for localhost: $1/site.crt and $1/site.key.
make_cert() {
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$1/site.key" -out "$1/site.crt" >/dev/null 2>&1
}

# The YAML of sag's one backend in front of the server at 127.0.0.1:$1, as
# the bench scripts configure it (cookie insert, no health checks); $2, when
# given, is an extra line for the backend (a pool setting).
sag_backend_yaml() {
  cat <<YAML
backends:
  - name: app
    servers: [{name: s1, address: "127.0.0.1:$1"}]
    health_check: {type: none}
    persistence: {cookie: {name: SRV, mode: insert}}
${2:-}
YAML
}

# An HAProxy configuration equivalent to sag's in the bench scripts (1
# thread, cookie insert, X-Forwarded-For, connection reuse) into $1: the
# frontend's bind line's arguments are $2, the server is 127.0.0.1:$3.
haproxy_bench_cfg() {
  cat >"$1" <<CFG
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
  bind $2
  default_backend b
backend b
  cookie SRV insert indirect nocache
  server s1 127.0.0.1:$3 cookie s1
CFG
}
