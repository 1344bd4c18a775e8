// HTTP/1.1 toward the client (Beast), HTTP/1.1 keep-alive toward servers.
// Requests are handled in order (pipelined ones wait in the read buffer);
// bodies stream through one fixed buffer per direction, so a 1 GiB upload
// or download holds a few KiB of the gateway's memory.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "session/client_connection.h"
#include "tls/tls_socket_stream.h"

namespace sag::session {

using PlainStream = boost::asio::ip::tcp::socket;
// TLS on the socket itself (no engine buffers): see tls/tls_socket_stream.h.
using TlsStream = tls::TlsSocketStream;

// Serves requests until the connection should close; never throws for
// network errors. The connection's deadline must be watched by the caller.
boost::asio::awaitable<void> serve_http1(PlainStream& stream, ClientConnection& conn);
boost::asio::awaitable<void> serve_http1(TlsStream& stream, ClientConnection& conn);

}  // namespace sag::session
