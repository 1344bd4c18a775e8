#!/usr/bin/env bash
# The seed's Redis setup (examples/redis-tcp/redis-tcp.yaml): builds sag if
# needed, starts three redis-server masters on 127.0.0.1:6391-6393 (no
# persistence, in a temporary folder) and sag in front of them on
# 127.0.0.1:6390, in the foreground. Ctrl-C stops it all.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
./.ci/install-deps
if [ ! -x build/bin/gateway ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake --build build
fi
password_file="$root/certs/admin-password"
if [ ! -s "$password_file" ]; then
  (umask 077 && openssl rand -base64 18 | tr -d '/+=' > "$password_file")
fi
work=$(mktemp -d /tmp/sag-redis-tcp.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for port in 6391 6392 6393; do
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/redis-$port.log" &
  pids+=("$!")
done
cat <<TRY

Redis through sag on 127.0.0.1:6390 (three masters, weights 50/35/15, each
client address sticks to one of them):

  redis-cli -p 6390 SET greeting hello
  redis-cli -p 6390 GET greeting
  redis-cli -p 6390 CONFIG GET port           which master answered: the same
                                              one every time from this address

Stats page: http://127.0.0.1:9902/ (user admin, password $(head -n 1 "$password_file"))

TRY
build/bin/gateway --config examples/redis-tcp/redis-tcp.yaml &
pids+=("$!")
wait "${pids[-1]}"
