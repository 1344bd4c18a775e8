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

# An ECDSA P-256 certificate for localhost: $1/site.crt and $1/site.key.
make_cert() {
  mkdir -p "$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$1/site.key" -out "$1/site.crt" >/dev/null 2>&1
}
