#include "session/tcp/tcp_relay.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>

#include "affinity/balance/stable_hash.h"
#include "affinity/model/server.h"
#include "config/base/asio_prelude.h"
#include "session/client_connection.h"
#include "session/tcp/proxy_header.h"
#include "tls/server_tls_context.h"
#include "tls/tls_socket_stream.h"

namespace sag::session {
namespace asio = boost::asio;
using asio::awaitable;
using tcp = asio::ip::tcp;
using base::kTuple;
using Clock = std::chrono::steady_clock;

namespace {

// Who ended the relay first (SPEC §6's TERMINATION words).
enum class End : uint8_t { kNone, kClient, kServer, kIdle, kConnectFailed, kShutdown, kServerDown };

const char* word(End e) {
  switch (e) {
    case End::kNone:
    case End::kClient: return "client-close";
    case End::kServer: return "server-close";
    case End::kIdle: return "idle";
    case End::kConnectFailed: return "connect-failed";
    case End::kShutdown: return "shutdown";
    case End::kServerDown: return "server-down";
  }
  return "client-close";
}

int64_t ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// One relay: both sockets, what moved, how it ended.
struct Relay : ServerDownWatch {
  Relay(ClientConnection& c, tcp::socket& up, Deadline& idle, Clock::duration idle_for)
      : conn(c), server(up), idle(idle), idle_for(idle_for) {}
  ClientConnection& conn;
  tcp::socket& server;
  Deadline& idle;
  Clock::duration idle_for;
  uint64_t in = 0;   // from the client
  uint64_t out = 0;  // to the client
  End end = End::kNone;
  bool client_done = false;  // the client half-closed: only the server's side waits

  // The idle deadline cancels the socket a direction still waits on.
  void touch() { idle.arm_after(idle_for, client_done ? &server : &conn.lowest); }

  void ended(End e) {
    if (end == End::kNone) end = e;
  }
  // Both sides go: the other direction's wait ends at once.
  void close_both() {
    boost::system::error_code ignored;
    conn.lowest.shutdown(tcp::socket::shutdown_both, ignored);
    conn.lowest.cancel(ignored);
    server.shutdown(tcp::socket::shutdown_both, ignored);
    server.cancel(ignored);
  }
};

// A side of the relay as the pump sees it: the server's socket, or the
// client's (plain, or the TLS stream on it). Readiness waits and reads that
// never block, so no buffer is held while a side is quiet.
struct SocketSide {
  static constexpr bool kTls = false;
  tcp::socket& s;
  tcp::socket& socket() { return s; }
  tcp::socket& stream() { return s; }
  template <class Token>
  auto wait(Token&& token) {
    return s.async_wait(tcp::socket::wait_read, std::forward<Token>(token));
  }
  size_t read_now(void* p, size_t n, boost::system::error_code& ec) { return s.read_some(asio::buffer(p, n), ec); }
  static bool eof(const boost::system::error_code& ec) { return ec == asio::error::eof; }
};

struct TlsSide {
  static constexpr bool kTls = true;
  tls::TlsSocketStream& s;
  tcp::socket& socket() { return s.next_layer(); }
  tls::TlsSocketStream& stream() { return s; }
  template <class Token>
  auto wait(Token&& token) {
    return s.async_wait_readable(std::forward<Token>(token));
  }
  size_t read_now(void* p, size_t n, boost::system::error_code& ec) { return s.read_some_now(p, n, ec); }
  // The client's close_notify, or a TCP FIN without one (still a half-close
  // here: the bytes before it were whole records).
  static bool eof(const boost::system::error_code& ec) {
    return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
  }
};

// Bytes from `from` to `to` until `from` ends. EOF passes the half-close on
// (true: toward a TLS client, close_notify then FIN); an error, the idle
// deadline or a stop closes both sides (false). No buffer is held while
// waiting: one is leased per read.
template <class From, class To>
awaitable<bool> pump(Relay& r, From from, To to, bool from_client) {
  WorkerContext& w = r.conn.worker;
  const End side = from_client ? End::kClient : End::kServer;
  for (;;) {
    auto [wec] = co_await from.wait(kTuple);
    if (wec) {
      r.ended(r.idle.fired() ? End::kIdle : w.stopping ? End::kShutdown : side);
      r.close_both();
      co_return false;
    }
    BufferPool::Lease lease(w.buffers);
    boost::system::error_code ec;
    const size_t n = from.read_now(lease.get(), BufferPool::kSize, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
    if (From::eof(ec)) {
      r.ended(side);
      if constexpr (To::kTls) {
        auto [sec] = co_await to.stream().async_shutdown(kTuple);
        if (sec) {
          r.close_both();
          co_return false;
        }
      }
      boost::system::error_code ignored;
      to.socket().shutdown(tcp::socket::shutdown_send, ignored);
      if (from_client) {
        r.client_done = true;
        r.touch();
      }
      co_return true;
    }
    if (ec) {
      r.ended(side);
      r.close_both();
      co_return false;
    }
    (from_client ? r.in : r.out) += n;
    r.touch();
    auto [xec, xn] = co_await asio::async_write(to.stream(), asio::buffer(lease.get(), n), kTuple);
    if (xec) {
      // The receiving side is gone: it ended the connection.
      r.ended(r.idle.fired() ? End::kIdle : w.stopping ? End::kShutdown : from_client ? End::kServer : End::kClient);
      r.close_both();
      co_return false;
    }
  }
}

struct Choice {
  affinity::Server* server = nullptr;
  std::optional<affinity::PersistOutcome> persist;
  uint32_t retries = 0;
  End failed = End::kNone;
};

// The server for this connection, connected: a source entry, the balancer,
// another server after a connect failure (within `retries`).
awaitable<Choice> connect(ClientConnection& conn, const BackendRuntime& br, tcp::socket& up,
                          Deadline& dl) {
  WorkerContext& w = conn.worker;
  const auto& bc = br.backend->config();
  affinity::AffinityRequest input;
  input.source = bc.persistence.source ? &conn.client.ip : nullptr;
  if (br.hash_source == HashSource::kSource)
    input.hash = affinity::stable_hash64(std::string_view(
        reinterpret_cast<const char*>(conn.client.ip.bytes.data()), conn.client.ip.v6 ? 16 : 4));
  uint32_t excluded[8];
  size_t n_excluded = 0;
  Choice c;
  for (;;) {
    input.now = w.clock.unix_seconds();
    input.steady_now = w.clock.steady_now();
    input.excluded = {excluded, n_excluded};
    const affinity::AffinityDecision d = br.resolver->resolve(input);
    if (bc.persistence.source) c.persist = d.outcome;
    if (!d.server) {
      c.failed = End::kConnectFailed;
      co_return c;
    }
    const tcp::endpoint& ep = br.endpoints[d.server->index()];
    boost::system::error_code ignored;
    up.open(ep.protocol(), ignored);
    dl.arm_after(bc.connect_timeout, &up);
    auto [cec] = co_await up.async_connect(ep, kTuple);
    dl.disarm();
    boost::system::error_code ec = cec;
    if (!ec && bc.proxy_protocol == config::ProxyProtocol::kV2) {
      // The client's address first (within the connect timeout).
      ProxyHeader::Buffer header;
      const size_t n = ProxyHeader::proxy(conn.lowest.remote_endpoint(ignored),
                                          conn.lowest.local_endpoint(ignored), header);
      dl.arm_after(bc.connect_timeout, &up);
      auto [wec, wn] = co_await asio::async_write(up, asio::buffer(header.data(), n), kTuple);
      dl.disarm();
      ec = wec;
    }
    if (!ec) {
      up.set_option(tcp::no_delay(true), ignored);
      c.server = d.server;
      co_return c;
    }
    up.close(ignored);
    if (w.stopping || c.retries >= bc.retries || n_excluded == std::size(excluded)) {
      c.failed = w.stopping ? End::kShutdown : End::kConnectFailed;
      co_return c;
    }
    excluded[n_excluded++] = d.server->index();
    ++c.retries;
  }
}

void log_connection(ClientConnection& conn, const BackendRuntime* br, const Choice& c, const Relay* r,
                    End end, int64_t tc) {
  AccessLog& log = *conn.gen->access_log;
  if (!log.enabled()) return;
  AccessRecord rec;
  rec.tcp = true;
  rec.client_ip = conn.client_ip;
  rec.client_port = conn.client.port;
  rec.start = conn.accepted_wall;
  rec.listener = conn.listener->config->name;
  rec.backend = br ? std::string_view(br->backend->name()) : std::string_view("-");
  rec.server = c.server ? std::string_view(c.server->name()) : std::string_view("-");
  rec.tw = 0;
  rec.tc = tc;
  rec.tt = ms(Clock::now() - conn.accepted);
  rec.bytes_in = r ? r->in : 0;
  rec.bytes = r ? r->out : 0;
  rec.persist = c.persist ? affinity::to_string(*c.persist) : "-";
  rec.termination = word(end);
  log.write(rec);
}

}  // namespace

void WorkerContext::close_relays_of_down_servers() {
  for (ServerDownWatch* w = watches_; w;) {
    ServerDownWatch* next = w->next;
    if (!w->watched->up() || w->watched->admin_state() == affinity::AdminState::kMaint) {
      unwatch(w);
      w->close(w);
    }
    w = next;
  }
}

namespace {

// From the connect to the last byte: the connection is accepted (and, with
// TLS, its handshake done); `client` is its side of the relay.
template <class ClientSide>
awaitable<void> relay(ClientConnection& conn, ClientSide client) {
  using namespace asio::experimental::awaitable_operators;
  WorkerContext& worker = conn.worker;
  // conn.gen holds the generation for the connection's life (a relay never
  // takes a reload's newer one), so `br` stays valid.
  const ListenerRuntime& listener = *conn.listener;
  const int bi = listener.router ? listener.router->select("", "/") : -1;
  const BackendRuntime* br = bi < 0 ? nullptr : &conn.gen->backends[static_cast<size_t>(bi)];
  if (!br) co_return;

  tcp::socket up(worker.io);
  Deadline dl(worker.deadlines);
  const auto connect_start = Clock::now();
  const Choice c = co_await connect(conn, *br, up, dl);
  if (c.persist) br->backend->persistence_counters().count(*c.persist);
  if (!c.server) {
    log_connection(conn, br, c, nullptr, c.failed, -1);
    co_return;
  }
  const int64_t tc = ms(Clock::now() - connect_start);
  c.server->request_started();
  boost::system::error_code ec;
  client.socket().non_blocking(true, ec);
  up.non_blocking(true, ec);
  Relay r(conn, up, dl, br->backend->config().idle_timeout);
  const bool watched = br->backend->config().on_down == config::OnDown::kClose;
  if (watched) {
    r.watched = c.server;
    r.close = [](ServerDownWatch* w) {
      auto& relay = static_cast<Relay&>(*w);
      relay.ended(End::kServerDown);
      relay.close_both();
    };
    worker.watch(&r);
  }
  r.touch();
  co_await (pump(r, client, SocketSide{up}, true) && pump(r, SocketSide{up}, client, false));
  if (watched) worker.unwatch(&r);
  dl.disarm();
  c.server->request_finished();
  worker.stats.tcp_done(br->backend->id(), c.server->index(), r.in, r.out);
  boost::system::error_code ignored;
  up.close(ignored);
  log_connection(conn, br, c, &r, r.end, tc);
}

}  // namespace

awaitable<void> run_tcp_connection(tcp::socket socket, const ListenerRuntime& listener,
                                   WorkerContext& worker) {
  const ConnectionCount counted(worker, listener.id);

  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) co_return;
  if (!listener.tls) {
    ClientConnection conn(worker, worker.current, listener, socket);
    conn.describe(remote);
    co_await relay(conn, SocketSide{socket});
    co_return;
  }
  // TLS ends here (SPEC §8); the context is held for the connection's life,
  // as a reload may retire it meanwhile.
  const std::shared_ptr<tls::ServerTlsContext> tls = listener.tls;
  tls::TlsSocketStream stream(std::move(socket), tls->asio_context());
  ClientConnection conn(worker, worker.current, listener, stream.next_layer());
  conn.describe(remote);
  conn.client.tls = true;
  // No server is chosen for a client that can't finish a handshake within
  // timeouts.client (docs/behaviour.md#tcp-mode).
  {
    Deadline hs(worker.deadlines);
    hs.arm_after(conn.gen->config->timeouts.client, &conn.lowest);
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    worker.stats.tls_handshake(listener.id, !hec);
    if (hec) co_return;
  }
  co_await relay(conn, TlsSide{stream});
}

}  // namespace sag::session
