// AdminServer: the admin listener's transport (HTTP/1.1 over Beast on a
// thread of its own). What it answers is AdminHandler's (admin_server.cc);
// this file only moves bytes, bounds what a client may hold, and keeps
// /healthz reachable under a flood of idle or slow connections.
//
// Bounds and timeouts (none configurable; an admin client is a browser, a
// scraper, curl or a health probe, all of which send a request at once):
// - 64 connections; at the limit a new connection replaces the one that has
//   waited longest for its request (AdminConnections, which says why);
// - a request head must be complete 5 s after the accept, or after its
//   first byte on a kept-alive connection; a kept-alive connection may wait
//   10 s for that first byte; a body (64 KiB at most) gets 10 s after its
//   head, a response 10 s to be written.
// So 200 idle or slowloris connections cost each new client at most the
// eviction of one of them, and none of them lives longer than 5 s.
#include "gateway/admin/admin_server.h"

#include <chrono>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "config/base/accept_loop.h"
#include "config/base/asio_prelude.h"
#include "gateway/admin/admin_connections.h"
#include "gateway/log.h"
#include "session/log_throttle.h"
#include "session/asio_endpoint.h"

namespace sag::gateway {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

using base::kTuple;
constexpr size_t kMaxConnections = 64;
constexpr size_t kHeaderLimit = 16 * 1024;
constexpr size_t kBodyLimit = 64 * 1024;
// The whole request head, from the accept (first request) or from the
// head's first byte (next requests on a kept-alive connection).
constexpr std::chrono::seconds kHeadTimeout{5};
// An idle kept-alive connection, until the first byte of its next request.
// Above the stats page's 5 s refresh, so a browser keeps its connection.
constexpr std::chrono::seconds kKeepAliveTimeout{10};
constexpr std::chrono::seconds kBodyTimeout{10};
constexpr std::chrono::seconds kWriteTimeout{10};

void log_exception(const char* what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log_error(std::string("admin: ") + what + " ended by exception: " + ex.what());
  }
}

// One admin connection: its stream, and its place in the connection set.
struct Connection final : AdminConnections::Member {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}

  // Called on the admin thread while the connection waits for its request:
  // its pending read ends (cancelled, or at end of stream) and the coroutine
  // exits without answering; the client sees the connection closed.
  void evict() override {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.cancel();
  }

  beast::tcp_stream stream;
};

// A request that could not be read: the answer it gets (none when status
// is 0: the client went away or the connection timed out).
struct ReadError {
  unsigned status = 0;
  const char* reason = "";
};

ReadError read_error(const boost::system::error_code& ec) {
  if (ec == http::error::body_limit) return {413, "body too large (64 KiB at most)"};
  if (ec == http::error::header_limit) return {431, "request head too large"};
  if (ec != http::error::end_of_stream && ec != http::error::partial_message &&
      ec.category() == http::make_error_code(http::error::bad_target).category())
    return {400, "bad request"};
  return {};
}

void error_message(http::response<http::string_body>& res, const ReadError& e) {
  AdminResponse r = admin::error_response(e.status, e.reason);
  res = {};
  res.result(e.status);
  res.version(11);
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(false);
  res.body() = std::move(r.body);
  res.prepare_payload();
}

void response_message(http::response<http::string_body>& res,
                      const http::request<http::string_body>& req, AdminResponse r) {
  res = {};
  res.result(r.status);
  res.version(req.version());
  res.set(http::field::server, "sag-admin");
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store");
  if (r.challenge) res.set(http::field::www_authenticate, "Basic realm=\"sag\"");
  if (!r.allow.empty()) res.set(http::field::allow, r.allow);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(r.body);
  res.prepare_payload();
  if (r.head) res.body().clear();  // Content-Length stays that of the GET
}

}  // namespace

struct AdminServer::Impl {
  Impl(std::shared_ptr<const config::GatewayConfig> config, affinity::BackendSet& backends,
       const session::GatewayStats& stats, Hooks hooks)
      : handler(std::move(config), backends, stats, std::move(hooks)),
        io(std::make_unique<asio::io_context>(1)),
        acceptor(std::make_unique<tcp::acceptor>(*io)) {}

  // A connection just accepted: admitted (or refused), then served.
  void accept(tcp::socket socket);
  asio::awaitable<void> serve(std::unique_ptr<Connection> conn);
  // A new connection found the set full (evicted: it replaced another one;
  // otherwise it was refused): a warning, at most once a minute.
  void note_full(bool evicted);

  AdminHandler handler;
  // Declared before the io_context: the connections that the io_context's
  // teardown destroys leave this set.
  AdminConnections connections{kMaxConnections};
  session::LogThrottle full_log;
  // Torn down by stop(): acceptor, then the io_context (which destroys the
  // suspended connection coroutines and their sockets).
  std::unique_ptr<asio::io_context> io;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread thread;
  uint16_t port = 0;
};

void AdminServer::Impl::note_full(bool evicted) {
  uint64_t held_back = 0;
  if (!full_log.allow(SteadyClock::now(), &held_back)) return;
  std::string m = "admin: " + std::to_string(connections.limit()) +
                  " connections open (the limit): " +
                  (evicted ? "closed the one waiting longest for its request to take a new one"
                           : "every one is answering; refused a new one");
  if (held_back) m += "; " + std::to_string(held_back) + " more since the last message";
  log_warning(m);
}

void AdminServer::Impl::accept(tcp::socket socket) {
  // Admitted here, before the coroutine first runs, so that the set
  // counts every accepted connection at once.
  auto conn = std::make_unique<Connection>(std::move(socket));
  const auto admission = connections.admit(*conn);
  if (admission != AdminConnections::Admission::kAdmitted)
    note_full(admission == AdminConnections::Admission::kAdmittedByEviction);
  if (admission == AdminConnections::Admission::kRefused) return;  // closes it
  asio::co_spawn(*io, serve(std::move(conn)),
                 [](std::exception_ptr e) { log_exception("connection", e); });
}

asio::awaitable<void> AdminServer::Impl::serve(std::unique_ptr<Connection> conn) {
  beast::tcp_stream& stream = conn->stream;
  boost::system::error_code ec;
  stream.socket().set_option(tcp::no_delay(true), ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  // Admitted as waiting: the first head is due kHeadTimeout after the accept.
  SteadyClock::time_point head_due = SteadyClock::now() + kHeadTimeout;

  for (bool first = true; !conn->evicted(); first = false) {
    if (!first) {
      conn->waiting();
      if (buffer.size() == 0) {  // else a pipelined request is already here
        stream.expires_after(kKeepAliveTimeout);
        auto [rec, rn] = co_await stream.async_read_some(buffer.prepare(kHeaderLimit), kTuple);
        if (rec) break;
        buffer.commit(rn);
      }
      head_due = SteadyClock::now() + kHeadTimeout;
    }
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    stream.expires_at(head_due);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    ec = hec;
    if (!ec && parser.get()[http::field::expect] == "100-continue" && !parser.is_done()) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      stream.expires_after(kWriteTimeout);
      auto [cec, cn] = co_await asio::async_write(stream, asio::buffer(kContinue), kTuple);
      ec = cec;
    }
    if (!ec) {
      stream.expires_after(kBodyTimeout);
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kTuple);
      ec = bec;
    }
    if (conn->evicted()) break;
    if (ec) {
      if (const ReadError e = read_error(ec); e.status) {
        conn->answering();
        error_message(res, e);
        stream.expires_after(kWriteTimeout);
        co_await http::async_write(stream, res, kTuple);
      }
      break;
    }

    conn->answering();
    const auto& req = parser.get();
    AdminRequest ar;
    ar.method = req.method_string();
    ar.target = req.target();
    ar.authorization = req[http::field::authorization];
    ar.body = req.body();
    response_message(res, req, handler.handle(ar));
    stream.expires_after(kWriteTimeout);
    auto [wec, wn] = co_await http::async_write(stream, res, kTuple);
    if (wec || !res.keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() { stop(); }

std::unique_ptr<AdminServer> AdminServer::start(
    std::shared_ptr<const config::GatewayConfig> config, affinity::BackendSet& backends,
    const session::GatewayStats& stats, Hooks hooks, std::string& error, int inherited_fd) {
  if (!config || !config->admin) {
    error = "no admin section in the config";
    return nullptr;
  }
  const tcp::endpoint ep = session::to_asio_endpoint(config->admin->endpoint);
  const std::string bind = config->admin->bind;
  auto impl = std::make_unique<Impl>(std::move(config), backends, stats, std::move(hooks));
  boost::system::error_code ec;
  tcp::acceptor& a = *impl->acceptor;
  if (inherited_fd >= 0) {
    a.assign(ep.protocol(), inherited_fd, ec);
  } else {
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && ep.address().is_v6()) a.set_option(asio::ip::v6_only(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(128, ec);
  }
  if (ec) {
    error = "admin: bind " + bind + ": " + ec.message();
    return nullptr;
  }
  impl->port = a.local_endpoint(ec).port();
  Impl* p = impl.get();
  asio::co_spawn(
      *p->io,
      base::accept_loop(
          a, [p](tcp::socket socket) { p->accept(std::move(socket)); },
          [](const boost::system::error_code& e) { log_warning("admin: accept: " + e.message()); }),
      [](std::exception_ptr e) { log_exception("accept loop", e); });
  p->thread = std::thread([p] { p->io->run(); });
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

void AdminServer::stop() {
  if (!impl_ || !impl_->io) return;
  impl_->io->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->acceptor.reset();
  impl_->io.reset();
}

uint16_t AdminServer::port() const { return impl_->port; }

int AdminServer::native_fd() const {
  return impl_ && impl_->acceptor ? impl_->acceptor->native_handle() : -1;
}

AdminHandler& AdminServer::handler() { return impl_->handler; }

}  // namespace sag::gateway
