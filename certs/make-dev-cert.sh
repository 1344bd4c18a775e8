#!/bin/sh
# Creates a self-signed ECDSA P-256 certificate for localhost, for development
# and the demo only: OUT_DIR/dev.pem holding the certificate and its key.
#
# usage: make-dev-cert.sh [--force] [OUT_DIR]
#   OUT_DIR defaults to this script's directory; an existing dev.pem is kept
#   unless --force is given.
set -eu

force=0
out_dir=
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "make-dev-cert.sh: unknown option $arg" >&2; exit 2 ;;
    *)
      if [ -n "$out_dir" ]; then echo "make-dev-cert.sh: more than one OUT_DIR" >&2; exit 2; fi
      out_dir=$arg ;;
  esac
done
[ -n "$out_dir" ] || out_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

out="$out_dir/dev.pem"
if [ -e "$out" ] && [ "$force" -eq 0 ]; then
  echo "$out exists; keeping it (use --force to replace)"
  exit 0
fi
command -v openssl >/dev/null 2>&1 || { echo "make-dev-cert.sh: openssl not found" >&2; exit 1; }
mkdir -p "$out_dir"

# Built in a private temp dir and moved into place, so a reader (or a SIGHUP
# reload) never sees a half-written file and the key is never world-readable.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/make-dev-cert.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
umask 077
openssl req -x509 -noenc -batch \
  -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
  -days 825 -sha256 \
  -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
cat "$tmp/cert.pem" "$tmp/key.pem" > "$tmp/dev.pem"
mv -f "$tmp/dev.pem" "$out"
echo "wrote $out"
