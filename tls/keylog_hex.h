// OpenSSL's keylog lines without printf. The gateway needs a TLS 1.3
// connection's two application traffic secrets to take its records over
// from OpenSSL (TlsSocketStream::keylog_callback), and a keylog callback is
// OpenSSL's only way to hand them out. With one set, libssl formats each of
// a handshake's five secrets (and the client random before it) as hex, one
// fortified sprintf("%02x") per byte: 320 calls, about 230,000 instructions,
// 8 % of a full ECDSA handshake's, spent in glibc's printf engine.
//
// keylog_hex.cc defines __sprintf_chk (glibc's fortified sprintf, the
// symbol Debian's libssl calls) in the executable that links it, which
// the dynamic linker binds ahead of glibc's: the format "%02x" with a value
// below 256 and room for three bytes is written directly, anything else
// goes to glibc's __vsprintf_chk, unchanged, overflow checks included.
//
// Thread: any; no state.
#pragma once

namespace sag::tls {

// Whether the process resolves __sprintf_chk to the fast path (the
// executable exports it because a library it links calls it). A call from
// main is enough to link it in; false only makes handshakes slower.
bool keylog_hex_bound();

}  // namespace sag::tls
