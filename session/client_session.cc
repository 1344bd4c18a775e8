#include "session/client_session.h"

#include "config/base/asio_prelude.h"
#include "session/client_connection.h"
#include "session/http1/http1_session.h"
#include "session/http2/http2_session.h"
#include "tls/server_tls_context.h"

namespace sag::session {
namespace asio = boost::asio;
using asio::awaitable;
using tcp = asio::ip::tcp;

namespace {

using base::kTuple;

// Sends close_notify (bounded): the client learns the response ended
// cleanly, and a TLS 1.2 session (kept on OpenSSL) stays resumable, which
// OpenSSL forgets on a close without it. It does not wait for the client's:
// the lingering close that follows does (see run_client_connection).
awaitable<void> close_tls(TlsStream& stream, ClientConnection& conn) {
  if (!conn.lowest.is_open()) co_return;
  conn.deadline.arm_after(std::chrono::milliseconds(500), &conn.lowest);
  co_await stream.async_shutdown(kTuple);
}

// Half-closes and drains what the client still sends, for a bounded time,
// so an error answer isn't lost to a reset (as HAProxy and nginx do).
awaitable<void> linger(ClientConnection& conn) {
  boost::system::error_code ec;
  conn.lowest.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  conn.deadline.arm_after(std::chrono::seconds(1), &conn.lowest);
  char sink[4096];
  for (size_t drained = 0; drained < 256 * 1024;) {
    auto [rec, n] = co_await conn.lowest.async_read_some(asio::buffer(sink), kTuple);
    if (rec) break;
    drained += n;
  }
}

}  // namespace

void ClientConnection::describe(const tcp::endpoint& remote) {
  ClientConnection& conn = *this;
  auto addr = remote.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  conn.client_ip = addr.to_string();
  conn.client.ip_text = conn.client_ip;
  conn.client.ip.v6 = addr.is_v6();
  if (addr.is_v6()) {
    auto b = addr.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), conn.client.ip.bytes.begin());
  } else {
    auto b = addr.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), conn.client.ip.bytes.begin());
  }
  conn.client.port = remote.port();
  conn.client.listener_port = conn.listener->port;
  conn.accepted = std::chrono::steady_clock::now();
  conn.accepted_wall = std::chrono::system_clock::now();
}

namespace {

// The two kinds of connection in coroutines of their own: a frame holds the
// locals of every branch, and an idle connection keeps this one for life.
awaitable<void> run_tls_connection(tcp::socket socket, const tcp::endpoint remote,
                                   const ListenerRuntime& listener, WorkerContext& worker) {
  const ConnectionCount counted(worker, listener.id);
  // Held for the connection's life: a reload may retire the generation
  // (and its context) while this connection still runs on it.
  const std::shared_ptr<tls::ServerTlsContext> tls = listener.tls;
  TlsStream stream(std::move(socket), tls->asio_context());
  ClientConnection conn(worker, worker.current, listener, stream.next_layer());
  conn.describe(remote);
  conn.client.tls = true;
  // timeouts.http_request covers the handshake and the first request head.
  conn.deadline.arm(conn.accepted + conn.gen->config->timeouts.http_request, &conn.lowest);
  // Not idle: a graceful stop lets the handshake and the first request
  // finish (bounded by that deadline), as for a plain connection.
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
  conn.worker.stats.tls_handshake(conn.listener->id, !ec);
  // ALPN picks the session; both run in this frame's callee, and no frame
  // of their own is kept between the handshake and them.
  if (!ec) {
    if (stream.alpn() == "h2") {
      co_await serve_http2(stream, conn);
    } else {
      co_await serve_http1(stream, conn);
    }
  }
  co_await close_tls(stream, conn);
  // Always lingers: a close with the client's close_notify (or anything
  // else) still unread would be a reset, which can destroy the end of
  // the response; the client closes at once on our close_notify.
  co_await linger(conn);
}

awaitable<void> run_plain_connection(tcp::socket socket, const tcp::endpoint remote,
                                     const ListenerRuntime& listener, WorkerContext& worker) {
  const ConnectionCount counted(worker, listener.id);
  ClientConnection conn(worker, worker.current, listener, socket);
  conn.describe(remote);
  co_await serve_http1(socket, conn);
  if (conn.linger) co_await linger(conn);
}

// A connection gone before it was served: counted, and its close is the
// end of it.
awaitable<void> closed_at_once(const ListenerRuntime& listener, WorkerContext& worker) {
  const ConnectionCount counted(worker, listener.id);
  co_return;
}

}  // namespace

// Not a coroutine itself: the coroutine that serves is the connection's
// outermost frame.
awaitable<void> run_client_connection(tcp::socket socket, const ListenerRuntime& listener,
                                      WorkerContext& worker) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return closed_at_once(listener, worker);
  if (listener.tls) return run_tls_connection(std::move(socket), remote, listener, worker);
  return run_plain_connection(std::move(socket), remote, listener, worker);
}

}  // namespace sag::session
