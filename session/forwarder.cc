#include "session/forwarder.h"

#include <cstring>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_static_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include "affinity/cookie_header.h"
#include "affinity/stable_hash.h"
#include "session/chunked_decoder.h"
#include "session/client_connection.h"
#include "session/deadline.h"
#include "session/header_rules.h"

namespace sag::session {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxExcluded = 16;

bool is_idempotent(http::verb v) {
  switch (v) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::trace:
    case http::verb::put:
    case http::verb::delete_:
      return true;
    default:
      return false;
  }
}

bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view t = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    size_t end = t.find_first_of(" \t=");
    if (beast::iequals(t.substr(0, end), token)) return true;
  }
  return false;
}

// Whether a shared cache could store this response, in which case a
// Set-Cookie on it must not be cached (SPEC §4, no-cache="set-cookie").
bool shared_cacheable(const http::response_header<>& res, http::verb method) {
  if (method != http::verb::get && method != http::verb::head) return false;
  std::string_view cc = res[http::field::cache_control];
  if (has_token(cc, "no-store") || has_token(cc, "private")) return false;
  if (has_token(cc, "no-cache")) return false;  // already revalidated every time
  if (has_token(cc, "public") || has_token(cc, "max-age") || has_token(cc, "s-maxage"))
    return true;
  if (res.find(http::field::expires) != res.end()) return true;
  // Heuristic freshness applies to these codes when a validator exists.
  switch (res.result_int()) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
      return res.find(http::field::last_modified) != res.end();
    default:
      return false;
  }
}

// Host (or :authority, or an absolute-form authority): RFC 3986 reg-name, IP
// literal and port characters only. It is copied into X-Forwarded-Host,
// Forwarded and redirect Locations, so quotes, spaces and the like are refused.
bool valid_authority(std::string_view host) {
  for (unsigned char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::strchr("-._~!$&'()*+,;=:[]%", c) != nullptr;
    if (!ok || c == 0) return false;
  }
  return true;
}

// A WebSocket handshake (RFC 6455 §4.1): the one upgrade that is tunnelled.
bool is_websocket_upgrade(const http::request_header<>& req) {
  return req.method() == http::verb::get && has_token(req[http::field::connection], "upgrade") &&
         beast::iequals(req[http::field::upgrade], "websocket");
}

// Counts a failure of `server` on real traffic and ejects it once the
// backend's passive threshold is reached; the health checker ends it.
void passive_failure(BackendRuntime& br, affinity::Server& server) {
  const auto& passive = br.backend->config().passive;
  const uint32_t failures = server.record_failure();
  if (passive && failures >= passive->consecutive_failures) server.eject(Clock::now());
}

using Lease = BufferPool::Lease;

// The server sent something that isn't valid HTTP, as opposed to a
// connection that closed or reset (end_of_stream and partial_message are
// Beast's words for those).
bool invalid_http(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_version).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_more && ec != http::error::need_buffer;
}

// The 502 a failed server exchange gets: invalid HTTP, or a connection that
// closed or reset before the response was whole.
GatewayError server_error(const beast::error_code& ec) {
  return invalid_http(ec) ? GatewayError::kBadResponse : GatewayError::kServerFailed;
}

// Keeps a server's active-request count exact on every path.
struct ServerGuard {
  affinity::Server* s = nullptr;
  void start(affinity::Server* server) {
    finish();
    s = server;
    s->request_started();
  }
  void finish() {
    if (s) s->request_finished();
    s = nullptr;
  }
  ~ServerGuard() { finish(); }
};

// Logs the exchange however forward() returns. An exit that neither
// completed the response nor answered (which sets the termination) means
// the client went away or stopped reading.
struct LogOnExit {
  ClientConnection& conn;
  Exchange& x;
  bool ended = false;  // the response went out whole (or the tunnel ended)
  ~LogOnExit() {
    if (!ended && x.termination == Termination::kOk)
      x.termination = conn.deadline.fired() ? Termination::kClientTimeout : Termination::kClientClose;
    finish_exchange(conn, x);
  }
};

}  // namespace

Forwarder::Forwarder(ClientConnection& conn, ConnectionPin& pin, Deadline& deadline)
    : conn_(conn), pin_(pin), deadline_(deadline) {}

awaitable<bool> Forwarder::forward(Request& req, ClientPort& port, Exchange& x) {
  LogOnExit log_on_exit{conn_, x};
  WorkerContext& w = conn_.worker;
  const config::GatewayConfig& cfg = *w.config;
  beast::error_code ec;

  if (req.method() == http::verb::connect) {
    co_await port.answer(GatewayError::kMethodNotAllowed, {},
                         "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n");
    co_return false;
  }
  const std::string_view target = req.target();
  if (target == "*" ? req.method() != http::verb::options : !target.starts_with("/")) {
    co_await port.answer(GatewayError::kBadTarget);
    co_return false;
  }
  const std::string_view host = req[http::field::host];
  if (!valid_authority(host)) {
    co_await port.answer(GatewayError::kBadHost);
    co_return false;
  }

  const ListenerRuntime& l = conn_.listener;
  if (l.config->redirect_https) {
    co_await redirect(host, *l.config->redirect_https, port, x);
    co_return false;
  }
  const int backend_index = l.router ? l.router->select(host, req.target()) : -1;
  if (backend_index < 0) {
    co_await port.answer(GatewayError::kNoRoute);
    co_return false;
  }
  BackendRuntime& br = w.backends[static_cast<size_t>(backend_index)];
  const auto& bc = br.backend->config();
  x.backend_index = static_cast<size_t>(backend_index);
  const affinity::StickyCookie* sticky = br.backend->cookie();
  const bool has_body = port.has_body();
  const bool websocket = port.can_tunnel() && is_websocket_upgrade(req);

  // Persistence inputs, read before the request is rewritten for the server.
  const auto& persistence = bc.persistence;
  join_cookies(req);
  std::optional<std::string_view> cookie_value;
  if (sticky) cookie_value = take_sticky_cookie(req, *sticky);
  std::optional<std::string_view> learn_value;
  if (persistence.learn) {
    if (auto v = affinity::find_cookie(cookie_joined_, persistence.learn->cookie)) {
      learn_value_.assign(*v);
      learn_value = learn_value_;
    }
  }
  const config::IpAddress origin = original_client(req, cfg.forwarded, conn_.client);
  const uint64_t hash = request_hash(br, req, origin);

  // The request as the server will see it; a chunked body stays chunked
  // (the protocol session decided the framing).
  const bool chunked = req.chunked();
  strip_hop_by_hop(req);
  if (chunked) req.chunked(true);
  req.erase(http::field::expect);
  if (websocket) {
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "websocket");
  }
  apply_forwarded(req, cfg.forwarded, conn_.client, host);
  req.version(11);

  // Choose a server and reach it; connection failures move to the next
  // candidate (SPEC §4); a reused connection that turns out dead is
  // replaced by a fresh one, without counting against the server.
  uint32_t excluded[kMaxExcluded];
  size_t n_excluded = 0;
  tcp::socket up(w.io);
  struct ForgetSocket {
    Deadline& d;
    tcp::socket* s;
    ~ForgetSocket() { d.forget(s); }
  } forget_up{deadline_, &up};
  // The server's bytes land in a pooled buffer: no allocation per request,
  // and large enough that a small response arrives in one read.
  Lease up_lease(w.buffers);
  beast::flat_static_buffer_base up_in(up_lease.buf.get(), BufferPool::kSize);
  std::optional<http::response_parser<http::buffer_body>> res_parser;
  // A server's chunk framing gets the caps a client's gets (ChunkedDecoder):
  // the relay buffer already bounds what a line can hold, this refuses a
  // size no real body has (it would stall the relay until the timeout) and
  // long extensions. Kept alive here: the parser holds it by reference.
  auto check_chunk = [](std::uint64_t size, std::string_view ext, beast::error_code& cec) {
    if (size > ChunkedDecoder::kMaxChunkSize || ext.size() > ChunkedDecoder::Limits{}.max_line)
      cec = http::error::bad_chunk;
  };
  affinity::AffinityDecision decision;
  Lease lease(w.buffers);
  size_t prefetched = 0;      // response body bytes already in lease.buf
  ServerGuard guard;
  // Attempts charged against the backend's `retries` (x.retries also
  // counts replays after a stale pooled connection, which are free).
  uint32_t charged = 0;
  // The last server that failed this request, and how (for the answer when
  // no other server is left).
  const affinity::Server* last_failed = nullptr;
  GatewayError last_error = GatewayError::kNoServer;
  // Why the last attempt failed, for blame().
  const char* fail_what = "";
  beast::error_code fail_ec;
  const bool replayable = !has_body && is_idempotent(req.method());
  for (;;) {
    affinity::AffinityRequest input;
    input.cookie = cookie_value;
    input.learn = learn_value;
    input.source = persistence.source ? &origin : nullptr;
    input.now = w.clock.unix_seconds();
    input.steady_now = w.clock.steady_now();
    input.excluded = {excluded, n_excluded};
    input.connection_pin = pin_.backend == backend_index ? pin_.server : nullptr;
    input.hash = hash;
    decision = br.resolver->resolve(input);
    x.persist = decision.outcome;
    if (!decision.server) {
      // Every server was tried and failed: the answer is the last failure
      // (a 502 naming its server, or connect-failed), not "no server".
      if (last_failed) {
        if (last_error != GatewayError::kConnectFailed)
          blame(x, *last_failed, info(last_error).status, fail_what, fail_ec);
        co_await port.answer(last_error);
      } else {
        co_await port.answer(GatewayError::kNoServer);
      }
      co_return false;
    }
    // Decided before any wait, so streams multiplexed behind this one
    // follow it even while this request is still in flight. Whatever the
    // persistence mode: with learn only, the server's session cookie
    // arrives with the first response, after its pipelined followers left.
    {
      if (pin_.server != decision.server || pin_.backend != backend_index) pin_.issued.reset();
      pin_.server = decision.server;
      pin_.backend = backend_index;
    }
    affinity::Server& server = *decision.server;
    x.server = server.name();
    x.tw = 0;
    bool reused = false;
    auto connect_start = Clock::now();
    if (auto pooled = br.pool->take(server.index(), connect_start)) {
      up = std::move(*pooled);
      reused = true;
      x.tc = 0;
    } else {
      if (up.is_open()) up.close(ec);
      deadline_.arm_after(bc.connect_timeout, &up);
      auto [cec] = co_await up.async_connect(br.endpoints[server.index()], kTuple);
      if (port.client_gone()) co_return false;
      if (cec) {
        up.close(ec);
        passive_failure(br, server);
        if (n_excluded < kMaxExcluded) excluded[n_excluded++] = server.index();
        last_failed = &server;
        last_error = GatewayError::kConnectFailed;
        if (charged < bc.retries) {
          ++charged;
          ++x.retries;
          w.stats.retry(x.backend_index);
          continue;
        }
        co_await port.answer(GatewayError::kConnectFailed);
        co_return false;
      }
      up.set_option(tcp::no_delay(true), ec);
      x.tc = ms_since(connect_start, Clock::now());
    }
    guard.start(&server);

    // Send the request; then wait for the response head.
    SendResult sent = co_await send_request(up, req, port, lease.buf.get(), bc.server_timeout);
    fail_what = "request not accepted";
    fail_ec = {};
    if (sent == SendResult::kClientFailed || port.client_gone()) {
      guard.finish();
      up.close(ec);
      co_return false;  // answered (413, 408...) or the client is gone
    }
    auto sent_at = Clock::now();
    bool failed = sent == SendResult::kServerFailed;
    bool timed_out = false;
    if (!failed) {
      for (;;) {  // skip interim 1xx responses (100 Continue was ours to send)
        res_parser.emplace();
        res_parser->body_limit(boost::none);
        res_parser->header_limit(BufferPool::kSize);
        if (req.method() == http::verb::head) res_parser->skip(true);
        res_parser->on_chunk_header(check_chunk);
        deadline_.arm_after(bc.server_timeout, &up);
        auto [rec, rn] = co_await http::async_read_header(up, up_in, *res_parser, kTuple);
        if (rec) {
          fail_what = invalid_http(rec) ? "invalid response head" : "no response";
          fail_ec = rec;
          failed = true;
          timed_out = deadline_.fired();
          break;
        }
        unsigned s = res_parser->get().result_int();
        if (s >= 200 || s == 101) break;
      }
    }
    if (port.client_gone()) co_return false;
    const bool got_head = !failed;
    if (!failed) {
      const auto head_at = Clock::now();
      x.tr = ms_since(sent_at, head_at);
      server.record_response_time(
          std::chrono::duration_cast<std::chrono::microseconds>(head_at - sent_at));
      // A body that fits the relay buffer is read whole before anything
      // goes to the client: a server dying mid-response is then still a
      // failure the client need not see (replay, or a clean 502), and
      // head and body leave together.
      prefetched = 0;
      const auto length = res_parser->content_length();
      if (!res_parser->is_done() && length && *length <= BufferPool::kSize) {
        auto& body = res_parser->get().body();
        body.data = lease.buf.get();
        body.size = BufferPool::kSize;
        while (!res_parser->is_done()) {
          deadline_.arm_after(bc.server_timeout, &up);
          auto [bec, bn] = co_await http::async_read_some(up, up_in, *res_parser, kTuple);
          if (bec == http::error::need_buffer) bec = {};
          if (bec) {
            fail_what = invalid_http(bec) ? "invalid response body" : "response cut short";
            fail_ec = bec;
            failed = true;
            timed_out = deadline_.fired();
            break;
          }
        }
        prefetched = BufferPool::kSize - body.size;
      }
    }
    if (port.client_gone()) co_return false;
    if (!failed) break;
    guard.finish();
    up.close(ec);
    const bool no_response_byte = !got_head && up_in.size() == 0;
    if (timed_out) {  // the server took the request and didn't answer: not retried
      passive_failure(br, server);
      blame(x, server, 504, "no response within timeouts.server", {});
      co_await port.answer(GatewayError::kServerTimeout);
      co_return false;
    }
    // Bytes of the request may have reached the server: only a request
    // that is safe to run twice is sent again (SPEC §4). Nothing of the
    // response has reached the client yet.
    if (replayable) {
      // A keep-alive connection the server closed just as it was reused
      // says nothing about the server: its idle connections go (the older
      // ones are as stale), and the next attempt on it is a fresh
      // connection, so this can't repeat for the same server.
      if (reused && no_response_byte) {
        br.pool->drop(server.index());
        up_in.clear();
        ++x.retries;  // logged and counted, not charged against `retries`
        w.stats.retry(x.backend_index);
        continue;
      }
      passive_failure(br, server);
      if (n_excluded < kMaxExcluded) excluded[n_excluded++] = server.index();
      last_failed = &server;
      last_error = server_error(fail_ec);
      if (charged < bc.retries) {
        ++charged;
        ++x.retries;
        w.stats.retry(x.backend_index);
        up_in.clear();
        continue;
      }
    } else if (!reused || !no_response_byte) {
      passive_failure(br, server);
    }
    blame(x, server, 502, fail_what, fail_ec);
    co_await port.answer(server_error(fail_ec));
    co_return false;
  }

  // The response, rewritten for the client.
  auto& res = res_parser->get();
  const unsigned status = res.result_int();
  if (status == 101 && !websocket) {
    // Switching protocols nobody asked for: the connection is unusable, but
    // the server did answer; nothing to hold against it.
    guard.finish();
    up.close(ec);
    blame(x, *decision.server, 502, "101 Switching Protocols to a request that asked none", {});
    co_await port.answer(GatewayError::kUnaskedUpgrade);
    co_return false;
  }
  x.status = status;
  x.answered_by = decision.server;
  // SPEC §2 passive: 5xx answers to idempotent requests count as failures.
  if (status >= 500 && is_idempotent(req.method())) {
    passive_failure(br, *decision.server);
  } else {
    decision.server->record_success();
  }
  const bool upstream_keep_alive = res.keep_alive();
  ResponseFraming framing;
  framing.no_body = req.method() == http::verb::head || status == 204 || status == 304 ||
                    status < 200;
  framing.upstream_chunked = res.chunked();
  framing.has_length = res_parser->content_length().has_value();
  strip_hop_by_hop(res);
  // No body follows a 1xx or 204 whatever the server wrote, so no length
  // either (RFC 9110 §8.6); its body bytes, if any, stay unread and the
  // connection is not reused. A 304's Content-Length describes the
  // representation and is kept.
  if (status == 204 || status < 200) res.erase(http::field::content_length);
  process_set_cookies(res, br, *decision.server, sticky,
                      decision.outcome == affinity::PersistOutcome::kCookieHit
                          ? decision.cookie_created
                          : std::nullopt);
  if (decision.set_cookie && sticky && sticky->config().mode == config::CookieMode::kInsert) {
    // A connection's cookie keeps its dates until they would need refreshing.
    const int64_t now = w.clock.unix_seconds();
    const bool pinned_here = pin_.server == decision.server && pin_.backend == backend_index &&
                             decision.outcome == affinity::PersistOutcome::kNew;
    if (pinned_here && (!pin_.issued || (sticky->refresh_after_seconds() > 0 &&
                                         now - *pin_.issued >= sticky->refresh_after_seconds())))
      pin_.issued = now;
    set_cookie_.clear();
    sticky->append_set_cookie(*decision.server, pinned_here ? *pin_.issued : now,
                              conn_.client.tls, set_cookie_, decision.cookie_created);
    res.insert(http::field::set_cookie, set_cookie_);
    if (shared_cacheable(res, req.method())) {
      std::string cc(res[http::field::cache_control]);
      cc += cc.empty() ? "no-cache=\"set-cookie\"" : ", no-cache=\"set-cookie\"";
      res.set(http::field::cache_control, cc);
    }
  }

  if (status == 101) {
    // The server took the upgrade: the connection is the tunnel's now.
    res.set(http::field::connection, "Upgrade");
    res.set(http::field::upgrade, "websocket");
    guard.finish();
    x.bytes += co_await port.tunnel(res, up, up_in);
    log_on_exit.ended = true;
    up.close(ec);
    co_return false;
  }

  // Streams the body; the head goes with the first bytes at hand (all of a
  // prefetched body), otherwise alone, so a slow body doesn't hold it.
  auto& body = res.body();
  const auto server_timeout = bc.server_timeout;
  bool client_ok = true;
  bool upstream_broke = false;
  char* buf = lease.buf.get();
  bool head_sent = false;
  if (res_parser->is_done() || up_in.size() == 0) {  // (a prefetched body is done)
    client_ok = co_await port.send_head(res, framing, prefetched ? buf : nullptr, prefetched,
                                        res_parser->is_done());
    head_sent = true;
  }
  while (client_ok && !res_parser->is_done()) {
    body.data = buf;
    body.size = BufferPool::kSize;
    deadline_.arm_after(server_timeout, &up);
    auto [rec, rn] = co_await http::async_read_some(up, up_in, *res_parser, kTuple);
    if (rec == http::error::need_buffer) rec = {};
    if (port.client_gone()) {
      client_ok = false;
      break;
    }
    // Mid-response the only honest signal left is cutting the client off.
    if (rec) {
      upstream_broke = true;
      fail_ec = rec;
      break;
    }
    const size_t got = BufferPool::kSize - body.size;
    // A read may parse only chunk framing: nothing to pass on yet.
    if (got == 0 && !res_parser->is_done()) continue;
    if (!head_sent) {
      client_ok = co_await port.send_head(res, framing, buf, got, res_parser->is_done());
      head_sent = true;
    } else {
      client_ok = co_await port.send_body(buf, got, res_parser->is_done());
    }
  }
  if (upstream_broke) {
    // SPEC §3: a server that breaks mid-response is a 502; the client,
    // possibly sent the head already, sees its connection or stream cut.
    const char* what = invalid_http(fail_ec) ? "invalid response body" : "response cut short";
    if (!head_sent) {
      guard.finish();
      up.close(ec);
      passive_failure(br, *decision.server);
      blame(x, *decision.server, 502, what, fail_ec);
      co_await port.answer(server_error(fail_ec));
      co_return false;
    }
    x.status = 502;
    x.termination = info(server_error(fail_ec)).termination;
    passive_failure(br, *decision.server);
    blame(x, *decision.server, 502, what, fail_ec);
    port.abort();
  }
  guard.finish();
  const bool complete = client_ok && !upstream_broke;
  log_on_exit.ended = complete;
  if (complete && upstream_keep_alive && res_parser->is_done() && up_in.size() == 0 &&
      !w.stopping) {
    br.pool->give_back(decision.server->index(), std::move(up), Clock::now());
  } else {
    up.close(ec);
  }
  co_return complete;
}

awaitable<Forwarder::SendResult> Forwarder::send_request(tcp::socket& up, Request& req,
                                                         ClientPort& port, char* buf,
                                                         Duration server_timeout) {
  http::request_serializer<http::buffer_body> sr{req};
  auto& body = req.body();
  body.data = nullptr;
  body.size = 0;
  body.more = port.has_body();
  deadline_.arm_after(server_timeout, &up);
  if (!body.more) {
    auto [ec, n] = co_await http::async_write(up, sr, kTuple);
    co_return ec ? SendResult::kServerFailed : SendResult::kOk;
  }
  // As for responses: a head whose body bytes are already here goes out
  // with them in one write.
  if (!port.body_buffered()) {
    auto [ec, n] = co_await http::async_write_header(up, sr, kTuple);
    if (ec) co_return SendResult::kServerFailed;
  }
  for (;;) {
    const BodyRead r = co_await port.read_body(buf, BufferPool::kSize);
    if (!r.ok) co_return SendResult::kClientFailed;
    if (r.size == 0 && !r.last) continue;
    body.data = r.size ? buf : nullptr;
    body.size = r.size;
    body.more = !r.last;
    deadline_.arm_after(server_timeout, &up);
    auto [wec, wn] = co_await http::async_write(up, sr, kTuple);
    if (wec == http::error::need_buffer) wec = {};
    if (wec) co_return SendResult::kServerFailed;
    if (r.last) break;
  }
  if (!sr.is_done()) {
    body.data = nullptr;
    body.size = 0;
    body.more = false;
    auto [wec, wn] = co_await http::async_write(up, sr, kTuple);
    if (wec && wec != http::error::need_buffer) co_return SendResult::kServerFailed;
  }
  co_return SendResult::kOk;
}

awaitable<void> Forwarder::redirect(std::string_view host, uint16_t port, ClientPort& cp,
                                    Exchange& x) {
  if (host.empty()) {
    co_await cp.answer(GatewayError::kMissingHost);
    co_return;
  }
  std::string_view bare = host;
  if (bare.front() == '[') {
    bare = bare.substr(0, bare.find(']') + 1);
  } else if (auto colon = bare.rfind(':'); colon != std::string_view::npos) {
    bare = bare.substr(0, colon);
  }
  std::string location = "Location: https://";
  location += bare;
  if (port != 443) location += ":" + std::to_string(port);
  location += x.path;
  location += "\r\n";
  co_await cp.answer(GatewayError::kRedirect, {}, location);
}

// Every Cookie field joined into cookie_joined_ (empty when none), as
// HTTP/2 crumbs are joined (RFC 9113 §8.2.3).
void Forwarder::blame(Exchange& x, const affinity::Server& server, unsigned status,
                      std::string_view what, const boost::system::error_code& ec) {
  x.blamed = server.name();
  WorkerContext& w = conn_.worker;
  uint64_t suppressed = 0;
  if (!w.warn || !w.server_warnings.allow(Clock::now(), &suppressed)) return;
  std::string line = "server ";
  line += x.backend_index < w.backends.size() ? w.backends[x.backend_index].backend->name() : "-";
  line += '/';
  line += server.name();
  line += ": ";
  line += what;
  if (ec) {
    line += " (";
    line += ec.message();
    line += ')';
  }
  line += "; answered ";
  line += std::to_string(status);
  line += " to \"";
  line += x.method;
  line += ' ';
  line += x.path.substr(0, 200);
  line += '"';
  if (suppressed > 0) {
    line += " (";
    line += std::to_string(suppressed);
    line += " similar lines suppressed)";
  }
  w.warn(line);
}

void Forwarder::join_cookies(const Request& req) {
  cookie_joined_.clear();
  auto [first, last] = req.equal_range(http::field::cookie);
  for (auto it = first; it != last; ++it) {
    if (!cookie_joined_.empty()) cookie_joined_ += "; ";
    cookie_joined_ += it->value();
  }
}

// The persistence value the client sent (stored in cookie_value_), with
// the request's Cookie rewritten for the server: insert mode takes the
// gateway's cookie out, prefix mode takes "ID~" off the application's
// cookie, rewrite mode leaves it (the server owns that cookie).
std::optional<std::string_view> Forwarder::take_sticky_cookie(
    Request& req, const affinity::StickyCookie& sticky) {
  const auto& c = sticky.config();
  const std::string_view name =
      c.mode == config::CookieMode::kPrefix ? std::string_view(c.app_cookie) : sticky.name();
  auto value = affinity::find_cookie(cookie_joined_, name);
  if (!value) return std::nullopt;
  switch (c.mode) {
    case config::CookieMode::kInsert:
      cookie_value_.assign(*value);
      affinity::remove_cookie(cookie_joined_, name, cookie_rest_);
      break;
    case config::CookieMode::kPrefix: {
      const size_t tilde = value->find('~');
      if (tilde == std::string_view::npos) return std::nullopt;  // the app's own value
      cookie_value_.assign(value->substr(0, tilde));
      const std::string app_value(value->substr(tilde + 1));
      affinity::replace_cookie_value(cookie_joined_, name, app_value, cookie_rest_);
      break;
    }
    case config::CookieMode::kRewrite:
      cookie_value_.assign(*value);
      return std::string_view(cookie_value_);
  }
  req.erase(http::field::cookie);
  if (!cookie_rest_.empty()) req.set(http::field::cookie, cookie_rest_);
  return std::string_view(cookie_value_);
}

// The request's key for hashing balancers (0 for other algorithms).
uint64_t Forwarder::request_hash(const BackendRuntime& br, const Request& req,
                                 const config::IpAddress& origin) const {
  switch (br.hash_source) {
    case HashSource::kNone:
      return 0;
    case HashSource::kSource:
      return affinity::stable_hash64(std::string_view(
          reinterpret_cast<const char*>(origin.bytes.data()), origin.v6 ? 16 : 4));
    case HashSource::kHeader:
      return affinity::stable_hash64(req[br.hash_name]);
    case HashSource::kCookie: {
      auto v = affinity::find_cookie(cookie_joined_, br.hash_name);
      return affinity::stable_hash64(v ? *v : std::string_view{});
    }
    case HashSource::kPath: {
      std::string_view target = req.target();
      return affinity::stable_hash64(target.substr(0, target.find('?')));
    }
  }
  return 0;
}

// Applies what persistence needs from the server's Set-Cookie fields:
// learn entries (recorded, or forgotten when the server clears the
// cookie), and the rewrite/prefix cookie values.
// `created`: the client's cookie creation date when it pinned this very
// server (kept so max_life is never extended by the server re-setting its
// cookie).
void Forwarder::process_set_cookies(http::response_header<>& res, BackendRuntime& br,
                                    const affinity::Server& server,
                                    const affinity::StickyCookie* sticky,
                                    std::optional<int64_t> created) {
  WorkerContext& w = conn_.worker;
  const auto& persistence = br.backend->config().persistence;
  const bool rewrite = sticky && sticky->config().mode != config::CookieMode::kInsert;
  if (!persistence.learn && !rewrite) return;
  auto [first, last] = res.equal_range(http::field::set_cookie);
  if (first == last) return;
  const int64_t now = w.clock.unix_seconds();
  bool changed = false;
  set_cookies_.clear();
  for (auto it = first; it != last; ++it) {
    std::string_view field = it->value();
    auto parsed = affinity::parse_set_cookie(field, now);
    if (!parsed) {
      set_cookies_.emplace_back(field);
      continue;
    }
    if (persistence.learn && parsed->name == persistence.learn->cookie) {
      if (parsed->clears) {
        br.resolver->forget(parsed->value);
      } else {
        br.resolver->learn(parsed->value, server, w.clock.steady_now());
      }
    }
    if (rewrite && !parsed->clears) {
      const auto& c = sticky->config();
      if (c.mode == config::CookieMode::kRewrite && parsed->name == c.name) {
        set_cookies_.push_back(
            affinity::with_cookie_value(field, *parsed, sticky->value_for(server, now, created)));
        changed = true;
        continue;
      }
      if (c.mode == config::CookieMode::kPrefix && parsed->name == c.app_cookie) {
        std::string prefixed = sticky->value_for(server, now, created);
        prefixed += '~';
        prefixed += parsed->value;
        set_cookies_.push_back(affinity::with_cookie_value(field, *parsed, prefixed));
        changed = true;
        continue;
      }
    }
    set_cookies_.emplace_back(field);
  }
  if (!changed) return;
  res.erase(http::field::set_cookie);
  for (const auto& v : set_cookies_) res.insert(http::field::set_cookie, v);
}

}  // namespace sag::session
