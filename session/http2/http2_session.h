// HTTP/2 toward the client (RFC 9113, on nghttp2's server API) after ALPN
// chose h2. One reader and one writer run at once on the connection (full
// duplex); every stream is its own coroutine driving a Forwarder, so
// streams proxy concurrently over pooled HTTP/1.1 server connections.
//
// Flow control bounds what a connection can hold: the gateway grants a
// stream 64 KiB and the connection 1 MiB of request body, and takes more
// only as servers consume it; a response moves on only as fast as the
// client's windows allow (one relay buffer per stream). nghttp2's
// protections (rapid reset, CONTINUATION, SETTINGS and PING floods) end
// the connection with GOAWAY.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "session/client_connection.h"
#include "session/http1/http1_session.h"

namespace sag::session {

// Serves the connection until it closes; never throws for network or
// protocol errors. The connection's deadline must be watched by the caller.
boost::asio::awaitable<void> serve_http2(TlsStream& stream, ClientConnection& conn);
// Prior-knowledge HTTP/2 over a plain socket (the client sends the preface
// first). Listeners don't offer it (h2 only through ALPN); it exists for the
// fuzz target (tests/fuzz/h2_fuzz.cc) and tests, which drive the same
// session without a TLS handshake.
boost::asio::awaitable<void> serve_http2(PlainStream& stream, ClientConnection& conn);

}  // namespace sag::session
