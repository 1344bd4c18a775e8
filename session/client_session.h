// The life of one accepted client connection: TLS handshake (when the
// listener has TLS) under timeouts.http_request, ALPN dispatch, then the
// HTTP/1.1 session until the connection closes. Runs on the worker that
// accepted it; owns the socket.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "session/worker_context.h"

namespace sag::session {

// Serves a connection accepted on `listener` of the worker's current
// generation. `worker` outlives the coroutine. The caller has already
// counted the connection in worker.process_connections; this releases it.
boost::asio::awaitable<void> run_client_connection(boost::asio::ip::tcp::socket socket,
                                                   const ListenerRuntime& listener,
                                                   WorkerContext& worker);

}  // namespace sag::session
