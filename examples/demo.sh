#!/usr/bin/env bash
# The demo (README): installs what is missing, builds Release into build/,
# makes a self-signed certificate, starts three demo backends and runs the
# gateway in the foreground with examples/demo.yaml. Ctrl-C stops it all.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

./.ci/install-deps
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
./certs/make-dev-cert.sh
# The admin listener's password (examples/demo.yaml): made once, kept.
password_file="$root/certs/admin-password"
if [ ! -s "$password_file" ]; then
  (umask 077 && openssl rand -base64 18 | tr -d '/+=' > "$password_file")
fi
admin_password="$(head -n 1 "$password_file")"

bin="$root/build/bin"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for i in 1 2 3; do
  "$bin/gateway-demo-backend" --name "s$i" --port "900$i" --bind 127.0.0.1 &
  pids+=("$!")
done

cat <<TRY

The gateway listens on https://localhost:8443/ (self-signed certificate) and
redirects http://localhost:8080/ there. Three backends s1, s2, s3 count
requests per session. Try, in another terminal:

  curl -k -c /tmp/jar -b /tmp/jar https://localhost:8443/    # repeat it:
      the same server every time and a growing request counter
  curl -k https://localhost:8443/                            # no cookie jar:
      round robin over s1, s2, s3, a new session each time
  curl -i http://localhost:8080/                             # 308 to https

The stats page (state, weight, sessions, requests, errors, checks; it
refreshes itself) is at http://127.0.0.1:9901/ in a browser:
user admin, password $admin_password (kept in certs/admin-password).
Metrics: curl -u admin:$admin_password http://127.0.0.1:9901/metrics

Access log lines follow below. Ctrl-C stops the gateway and the backends.

TRY

# In the foreground, not exec'd: the EXIT trap stops the backends when the
# gateway ends (Ctrl-C reaches the gateway, which shuts down gracefully).
"$bin/gateway" --config "$root/examples/demo.yaml"
