#include "session/http1_session.h"

#include <cstring>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/flat_static_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include "affinity/cookie_header.h"
#include "affinity/stable_hash.h"
#include "session/request_head.h"

namespace sag::session {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 4096;
constexpr size_t kMaxExcluded = 16;

int64_t ms_since(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

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

// Host (or an absolute-form authority): RFC 3986 reg-name, IP literal and
// port characters only. It is copied into X-Forwarded-Host, Forwarded and
// redirect Locations, so quotes, spaces and the like are refused.
bool valid_authority(std::string_view host) {
  for (unsigned char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::strchr("-._~!$&'()*+,;=:[]%", c) != nullptr;
    if (!ok || c == 0) return false;
  }
  return true;
}

// A method/target pair recovered from raw bytes for requests refused before
// Beast parsed them, so the access log still says what was asked.
void raw_request_line(std::string_view data, std::string& method, std::string& path) {
  size_t eol = data.find_first_of("\r\n");
  std::string_view line = data.substr(0, std::min<size_t>(eol, 256));
  size_t sp1 = line.find(' ');
  method.assign(line.substr(0, sp1 == std::string_view::npos ? 0 : sp1));
  if (sp1 == std::string_view::npos) {
    path.clear();
    return;
  }
  size_t sp2 = line.find(' ', sp1 + 1);
  path.assign(line.substr(sp1 + 1, sp2 == std::string_view::npos ? std::string_view::npos
                                                                   : sp2 - sp1 - 1));
}

template <class Stream>
class Http1Session {
 public:
  Http1Session(Stream& stream, ClientConnection& conn)
      : stream_(stream), conn_(conn), w_(conn.worker), cfg_(*conn.worker.config) {
    limits_.max_header_bytes = cfg_.limits.max_header_bytes;
    limits_.max_request_line = cfg_.limits.max_request_line;
    limits_.max_headers = cfg_.limits.max_headers;
  }

  awaitable<void> run() {
    bool first = true;
    for (;;) {
      if (!co_await read_head(first)) co_return;
      first = false;
      if (!co_await serve_request()) co_return;
      if (w_.stopping) co_return;
    }
  }

 private:
  // Per-request bookkeeping for the access log.
  struct Exchange {
    Clock::time_point start;
    std::chrono::system_clock::time_point start_wall;
    Clock::time_point head_done;
    int64_t tc = -1, tr = -1, tw = -1;
    unsigned status = 0;
    uint64_t bytes = 0;
    std::string_view backend, server;
    affinity::Server* answered_by = nullptr;  // null when the gateway answered
    size_t backend_index = GatewayStats::kNoBackend;
    affinity::PersistOutcome persist = affinity::PersistOutcome::kNew;
    bool persist_known = false;
    uint32_t retries = 0;
  };

  // Reads until a complete, valid request head is buffered. False: close
  // (an error was answered, the client left, or the idle timeout passed).
  awaitable<bool> read_head(bool first) {
    const auto& t = cfg_.timeouts;
    bool got_byte = false;
    x_ = Exchange{};
    backend_ = nullptr;
    if (first) {
      x_.start = conn_.accepted;
      x_.start_wall = conn_.accepted_wall;
      conn_.deadline.arm(conn_.accepted + t.http_request, &conn_.lowest);
    } else {
      conn_.deadline.arm_after(t.keepalive, &conn_.lowest);
    }
    size_t scanned = 0;  // bytes already known to hold no complete line
    for (;;) {
      if (in_.size() > 0) {
        if (size_t skip = leading_empty_lines(view()); skip > 0) {
          in_.consume(skip);
          scanned = 0;
        }
      }
      if (in_.size() > 0) {
        if (!got_byte) {
          got_byte = true;
          if (!first) {
            x_.start = Clock::now();
            x_.start_wall = std::chrono::system_clock::now();
            conn_.deadline.arm(x_.start + t.http_request, &conn_.lowest);
          }
        }
        // Rescan only when a line may have completed or a limit may be hit,
        // so a head dribbled byte by byte costs linear, not quadratic, work.
        std::string_view v = view();
        if (std::memchr(v.data() + scanned, '\n', v.size() - scanned) != nullptr ||
            v.size() > limits_.max_request_line || v.size() > limits_.max_header_bytes) {
          scan_ = scan_request_head(v, limits_);
          if (scan_.state == HeadScan::State::kComplete) {
            x_.head_done = Clock::now();
            co_return true;
          }
          if (scan_.state == HeadScan::State::kError) {
            raw_request_line(v, method_, path_);
            co_await answer(scan_.status, scan_.reason);
            co_return false;
          }
        }
        scanned = v.size();
      }
      if (w_.stopping && !got_byte) co_return false;
      conn_.idle = !got_byte;
      auto [ec, n] = co_await stream_.async_read_some(in_.prepare(kReadChunk), kTuple);
      conn_.idle = false;
      if (ec) {
        if (got_byte && conn_.deadline.fired()) {
          raw_request_line(view(), method_, path_);
          co_await answer(408, "request head not received in time");
        }
        co_return false;
      }
      in_.commit(n);
    }
  }

  std::string_view view() const {
    return {static_cast<const char*>(in_.data().data()), in_.size()};
  }

  // Handles the request whose head is buffered. True: read the next one.
  awaitable<bool> serve_request() {
    http::request_parser<http::buffer_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes + 1));
    if (cfg_.limits.max_body > 0) {
      parser.body_limit(cfg_.limits.max_body);
    } else {
      parser.body_limit(boost::none);
    }
    if (scan_.has_content_length && cfg_.limits.max_body > 0 &&
        scan_.content_length > cfg_.limits.max_body) {
      raw_request_line(view(), method_, path_);
      co_await answer(413, "request body too large");
      co_return false;
    }
    beast::error_code ec;
    parser.put(asio::buffer(in_.data().data(), scan_.head_length), ec);
    if (ec || !parser.is_header_done()) {
      raw_request_line(view(), method_, path_);
      co_await answer(400, "malformed request");
      co_return false;
    }
    in_.consume(scan_.head_length);
    auto& req = parser.get();
    method_.assign(req.method_string());
    path_.assign(req.target());
    http10_ = scan_.http10;
    bool client_keep_alive = req.keep_alive();

    // Request target forms (RFC 9112 §3.2).
    std::string_view target = req.target();
    if (req.method() == http::verb::connect) {
      co_await answer(405, "CONNECT is not supported", "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n");
      co_return false;
    }
    if (target.starts_with("http://") || target.starts_with("https://")) {
      // Absolute form: its authority replaces Host.
      size_t scheme_end = target.find("://") + 3;
      size_t slash = target.find('/', scheme_end);
      std::string authority(target.substr(scheme_end, slash - scheme_end));
      std::string path(slash == std::string_view::npos ? "/" : target.substr(slash));
      if (authority.empty()) {
        co_await answer(400, "bad request target");
        co_return false;
      }
      req.set(http::field::host, authority);
      req.target(path);
      path_ = path;
    } else if (target == "*") {
      if (req.method() != http::verb::options) {
        co_await answer(400, "bad request target");
        co_return false;
      }
    } else if (!target.starts_with("/")) {
      co_await answer(400, "bad request target");
      co_return false;
    }
    std::string_view host = req[http::field::host];
    if (!valid_authority(host)) {
      co_await answer(400, "bad host");
      co_return false;
    }

    const ListenerRuntime& l = conn_.listener;
    if (l.config->redirect_https) {
      co_await redirect(host, *l.config->redirect_https);
      co_return false;
    }
    const int backend_index = l.router ? l.router->select(host, req.target()) : -1;
    if (backend_index < 0) {
      co_await answer(404, "no route for this host and path");
      co_return false;
    }
    BackendRuntime& br = w_.backends[static_cast<size_t>(backend_index)];
    backend_ = &br;
    x_.backend = br.backend->name();
    x_.backend_index = static_cast<size_t>(backend_index);
    const affinity::StickyCookie* sticky = br.backend->cookie();
    const bool has_body = !parser.is_done();

    // Persistence inputs, read before the request is rewritten for the server.
    const auto& persistence = br.backend->config().persistence;
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
    const config::IpAddress origin = original_client(req, cfg_.forwarded, conn_.client);
    const uint64_t hash = request_hash(br, req, origin);

    // The request as the server will see it.
    strip_hop_by_hop(req);
    req.erase(http::field::expect);
    apply_forwarded(req, cfg_.forwarded, conn_.client, host);
    req.version(11);
    if (scan_.chunked) req.chunked(true);

    // Choose a server and reach it; connection failures move to the next
    // candidate (SPEC §4); a reused connection that turns out dead is
    // replaced by a fresh one, without counting against the server.
    uint32_t excluded[kMaxExcluded];
    size_t n_excluded = 0;
    tcp::socket up(w_.io);
    // The server's bytes land in a pooled buffer: no allocation per request,
    // and large enough that a small response arrives in one read.
    Lease up_lease(w_.buffers);
    beast::flat_static_buffer_base up_in(up_lease.buf.get(), BufferPool::kSize);
    std::optional<http::response_parser<http::buffer_body>> res_parser;
    affinity::AffinityDecision decision;
    Lease lease(w_.buffers);
    bool body_touched = false;  // client body bytes consumed: no replay possible
    size_t prefetched = 0;      // response body bytes already in lease.buf
    ServerGuard guard;
    for (;;) {
      affinity::AffinityRequest input;
      input.cookie = cookie_value;
      input.learn = learn_value;
      input.source = persistence.source ? &origin : nullptr;
      input.now = w_.clock.unix_seconds();
      input.steady_now = w_.clock.steady_now();
      input.excluded = {excluded, n_excluded};
      input.connection_pin = pin_backend_ == backend_index ? pin_ : nullptr;
      input.hash = hash;
      decision = br.resolver->resolve(input);
      x_.persist = decision.outcome;
      x_.persist_known = true;
      if (!decision.server) {
        co_await answer(503, "no server available");
        co_return false;
      }
      affinity::Server& server = *decision.server;
      x_.server = server.name();
      x_.tw = 0;
      bool reused = false;
      auto connect_start = Clock::now();
      const bool replayable_request = !has_body && is_idempotent(req.method());
      if (auto pooled = br.pool->take(server.index(), connect_start, !replayable_request)) {
        up = std::move(*pooled);
        reused = true;
        x_.tc = 0;
      } else {
        if (up.is_open()) up.close(ec);
        conn_.deadline.arm_after(br.backend->config().connect_timeout, &up);
        auto [cec] = co_await up.async_connect(br.endpoints[server.index()], kTuple);
        if (cec) {
          up.close(ec);
          passive_failure(br, server);
          if (n_excluded < kMaxExcluded) excluded[n_excluded++] = server.index();
          if (x_.retries < br.backend->config().retries) {
            ++x_.retries;
            w_.stats.retry(x_.backend_index);
            continue;
          }
          co_await answer(503, "no server available");
          co_return false;
        }
        up.set_option(tcp::no_delay(true), ec);
        x_.tc = ms_since(connect_start, Clock::now());
      }
      guard.start(&server);

      // Send the request; then wait for the response head.
      SendResult sent = co_await send_request(up, parser, lease.buf.get(), body_touched);
      if (sent == SendResult::kClientFailed) {
        guard.finish();
        up.close(ec);
        co_return false;  // answered (413) or the client is gone
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
          conn_.deadline.arm_after(br.backend->config().server_timeout, &up);
          auto [rec, rn] = co_await http::async_read_header(up, up_in, *res_parser, kTuple);
          if (rec) {
            failed = true;
            timed_out = conn_.deadline.fired();
            break;
          }
          unsigned s = res_parser->get().result_int();
          if (s >= 200 || s == 101) break;
        }
      }
      const bool got_head = !failed;
      if (!failed) {
        const auto head_at = Clock::now();
        x_.tr = ms_since(sent_at, head_at);
        server.record_response_time(
            std::chrono::duration_cast<std::chrono::microseconds>(head_at - sent_at));
        // A body that fits the relay buffer is read whole before anything
        // goes to the client: a server dying mid-response is then still a
        // failure the client need not see (replay, or a clean 502), and
        // head and body leave in one write.
        prefetched = 0;
        const auto length = res_parser->content_length();
        if (!res_parser->is_done() && length && *length <= BufferPool::kSize) {
          auto& body = res_parser->get().body();
          body.data = lease.buf.get();
          body.size = BufferPool::kSize;
          while (!res_parser->is_done()) {
            conn_.deadline.arm_after(br.backend->config().server_timeout, &up);
            auto [bec, bn] = co_await http::async_read_some(up, up_in, *res_parser, kTuple);
            if (bec == http::error::need_buffer) bec = {};
            if (bec) {
              failed = true;
              timed_out = conn_.deadline.fired();
              break;
            }
          }
          prefetched = BufferPool::kSize - body.size;
        }
      }
      if (!failed) break;
      guard.finish();
      up.close(ec);
      const bool no_response_byte = !got_head && up_in.size() == 0;
      if (timed_out) {  // the server took the request and didn't answer: not retried
        passive_failure(br, server);
        co_await answer(504, "server timed out");
        co_return false;
      }
      // Bytes of the request may have reached the server: only a request
      // that is safe to run twice is sent again (SPEC §4). Nothing of the
      // response has reached the client yet.
      const bool replayable = !has_body && is_idempotent(req.method());
      if (replayable) {
        // A keep-alive connection the server closed just as it was reused
        // says nothing about the server: its idle connections go (the older
        // ones are as stale), and the next attempt on it is a fresh
        // connection, so this can't repeat for the same server.
        if (reused && no_response_byte) {
          br.pool->drop(server.index());
          up_in.clear();
          continue;
        }
        passive_failure(br, server);
        if (n_excluded < kMaxExcluded) excluded[n_excluded++] = server.index();
        if (x_.retries < br.backend->config().retries) {
          ++x_.retries;
          w_.stats.retry(x_.backend_index);
          up_in.clear();
          continue;
        }
      } else if (!reused || !no_response_byte) {
        passive_failure(br, server);
      }
      co_await answer(502, "server failed");
      co_return false;
    }

    if (decision.set_cookie) {
      pin_ = decision.server;
      pin_backend_ = backend_index;
    }

    // Relay the response.
    auto& res = res_parser->get();
    const unsigned status = res.result_int();
    x_.status = status;
    x_.answered_by = decision.server;
    // SPEC §2 passive: 5xx answers to idempotent requests count as failures.
    if (status >= 500 && is_idempotent(req.method())) {
      passive_failure(br, *decision.server);
    } else {
      decision.server->record_success();
    }
    const bool upstream_keep_alive = res.keep_alive();
    const bool no_body = req.method() == http::verb::head || status == 204 || status == 304 ||
                         status < 200;
    const bool upstream_chunked = res.chunked();
    const bool has_length = res_parser->content_length().has_value();
    strip_hop_by_hop(res);
    process_set_cookies(res, br, *decision.server, sticky,
                        decision.outcome == affinity::PersistOutcome::kCookieHit
                            ? decision.cookie_created
                            : std::nullopt);
    bool to_client_keep_alive = client_keep_alive && !w_.stopping;
    if (!no_body) {
      if (upstream_chunked) {
        res.chunked(true);
      } else if (!has_length) {
        // Close-delimited from the server: chunk it for HTTP/1.1 clients.
        if (http10_) {
          to_client_keep_alive = false;
        } else {
          res.chunked(true);
        }
      }
    }
    if (decision.set_cookie && sticky && sticky->config().mode == config::CookieMode::kInsert) {
      set_cookie_.clear();
      sticky->append_set_cookie(*decision.server, w_.clock.unix_seconds(), conn_.client.tls,
                                set_cookie_, decision.cookie_created);
      res.insert(http::field::set_cookie, set_cookie_);
      if (shared_cacheable(res, req.method())) {
        std::string cc(res[http::field::cache_control]);
        cc += cc.empty() ? "no-cache=\"set-cookie\"" : ", no-cache=\"set-cookie\"";
        res.set(http::field::cache_control, cc);
      }
    }
    res.version(11);
    res.keep_alive(to_client_keep_alive);
    if (to_client_keep_alive && http10_) res.set(http::field::connection, "keep-alive");

    http::response_serializer<http::buffer_body> rs{res};
    upstream_broke_ = false;
    bool upstream_ok =
        co_await relay_response(up, up_in, *res_parser, rs, lease.buf.get(), prefetched);
    if (!upstream_ok) to_client_keep_alive = false;
    if (upstream_broke_) {
      // SPEC §3: a server that breaks mid-response is a 502; the client,
      // already sent the head, only sees its connection closed.
      x_.status = 502;
      passive_failure(br, *decision.server);
    }
    guard.finish();
    if (upstream_ok && upstream_keep_alive && res_parser->is_done() && up_in.size() == 0 &&
        !w_.stopping && status != 101) {
      br.pool->give_back(decision.server->index(), std::move(up), Clock::now());
    } else {
      up.close(ec);
    }
    log_exchange();
    co_return to_client_keep_alive;
  }

  enum class SendResult { kOk, kServerFailed, kClientFailed };

  // Writes the request head and streams its body from the client. On
  // kClientFailed the client connection must close (an answer such as 413
  // has been sent when one applies).
  awaitable<SendResult> send_request(tcp::socket& up,
                                     http::request_parser<http::buffer_body>& parser,
                                     char* buf, bool& body_touched) {
    auto& req = parser.get();
    const auto& bc = cfg_;
    http::request_serializer<http::buffer_body> sr{req};
    req.body().data = nullptr;
    req.body().size = 0;
    req.body().more = !parser.is_done();
    conn_.deadline.arm_after(server_timeout_for_send(), &up);
    if (parser.is_done()) {
      auto [ec, n] = co_await http::async_write(up, sr, kTuple);
      co_return ec ? SendResult::kServerFailed : SendResult::kOk;
    }
    // As for responses: a head whose body bytes are already here goes out
    // with them in one write.
    if (in_.size() == 0) {
      auto [ec, n] = co_await http::async_write_header(up, sr, kTuple);
      if (ec) co_return SendResult::kServerFailed;
    }
    if (scan_.expect_continue && in_.size() == 0) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      conn_.deadline.arm_after(bc.timeouts.client, &conn_.lowest);
      auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(kContinue), kTuple);
      if (ec) co_return SendResult::kClientFailed;
    }
    while (!parser.is_done()) {
      req.body().data = buf;
      req.body().size = BufferPool::kSize;
      conn_.deadline.arm_after(bc.timeouts.client, &conn_.lowest);
      auto [ec, n] = co_await http::async_read_some(stream_, in_, parser, kTuple);
      if (ec == http::error::need_buffer) ec = {};
      body_touched = true;
      if (ec) {
        if (ec == http::error::body_limit) {
          co_await answer(413, "request body too large");
        } else if (is_parse_error(ec)) {
          co_await answer(400, "malformed request body");
        } else if (conn_.deadline.fired()) {
          co_await answer(408, "request body not received in time");
        }
        co_return SendResult::kClientFailed;
      }
      const size_t got = BufferPool::kSize - req.body().size;
      if (got == 0 && !parser.is_done()) continue;  // framing only (see relay_response)
      req.body().data = got ? buf : nullptr;
      req.body().size = got;
      req.body().more = !parser.is_done();
      conn_.deadline.arm_after(server_timeout_for_send(), &up);
      auto [wec, wn] = co_await http::async_write(up, sr, kTuple);
      if (wec == http::error::need_buffer) wec = {};
      if (wec) co_return SendResult::kServerFailed;
    }
    if (!sr.is_done()) {
      req.body().data = nullptr;
      req.body().size = 0;
      req.body().more = false;
      auto [wec, wn] = co_await http::async_write(up, sr, kTuple);
      if (wec && wec != http::error::need_buffer) co_return SendResult::kServerFailed;
    }
    co_return SendResult::kOk;
  }

  // Counts a failure of `server` on real traffic and ejects it once the
  // backend's passive threshold is reached; the health checker ends it.
  void passive_failure(BackendRuntime& br, affinity::Server& server) {
    const auto& passive = br.backend->config().passive;
    const uint32_t failures = server.record_failure();
    if (passive && failures >= passive->consecutive_failures) server.eject(Clock::now());
  }

  static bool is_parse_error(const beast::error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_chunk).category() &&
           ec != http::error::need_buffer && ec != http::error::end_of_stream &&
           ec != http::error::partial_message;
  }

  std::chrono::milliseconds server_timeout_for_send() const {
    return backend_->backend->config().server_timeout;
  }

  // Joins every Cookie field into one (as HTTP/2 crumbs are joined), takes
  // the gateway's cookie out, and returns its value (stored in cookie_value_).
  // Every Cookie field joined into cookie_joined_ (empty when none), as
  // HTTP/2 crumbs are joined (RFC 9113 §8.2.3).
  void join_cookies(const http::request_header<>& req) {
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
  std::optional<std::string_view> take_sticky_cookie(http::request_header<>& req,
                                                     const affinity::StickyCookie& sticky) {
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
  uint64_t request_hash(const BackendRuntime& br, const http::request_header<>& req,
                        const config::IpAddress& origin) const {
    switch (br.hash_source) {
      case HashSource::kNone:
        return 0;
      case HashSource::kSource:
        return affinity::stable_hash64(std::string_view(reinterpret_cast<const char*>(origin.bytes.data()), origin.v6 ? 16 : 4));
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
  void process_set_cookies(http::response_header<>& res, BackendRuntime& br,
                           const affinity::Server& server, const affinity::StickyCookie* sticky,
                           std::optional<int64_t> created) {
    const auto& persistence = br.backend->config().persistence;
    const bool rewrite = sticky && sticky->config().mode != config::CookieMode::kInsert;
    if (!persistence.learn && !rewrite) return;
    auto [first, last] = res.equal_range(http::field::set_cookie);
    if (first == last) return;
    const int64_t now = w_.clock.unix_seconds();
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
          br.resolver->learn(parsed->value, server, w_.clock.steady_now());
        }
      }
      if (rewrite && !parsed->clears) {
        const auto& c = sticky->config();
        if (c.mode == config::CookieMode::kRewrite && parsed->name == c.name) {
          set_cookies_.push_back(affinity::with_cookie_value(field, *parsed, sticky->value_for(server, now, created)));
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

  // Streams the response (head already transformed) to the client. False
  // when either side failed: the client connection must then close, and the
  // server connection is not reused.
  // `prefetched`: body bytes already read into `buf` (the whole body when
  // the parser is done).
  awaitable<bool> relay_response(tcp::socket& up, beast::flat_static_buffer_base& up_in,
                                 http::response_parser<http::buffer_body>& rp,
                                 http::response_serializer<http::buffer_body>& rs, char* buf,
                                 size_t prefetched) {
    auto& body = rp.get().body();
    const auto server_timeout = server_timeout_for_send();
    body.data = prefetched ? buf : nullptr;
    body.size = prefetched;
    body.more = !rp.is_done();
    conn_.deadline.arm_after(cfg_.timeouts.client, &conn_.lowest);
    if (rp.is_done()) {
      auto [ec, n] = co_await http::async_write(stream_, rs, kTuple);
      x_.bytes += n;
      co_return !ec;
    }
    // Body bytes that came with the head go out in the same write as the
    // head; otherwise the head goes now, so a slow body doesn't hold it.
    if (up_in.size() == 0) {
      auto [hec, hn] = co_await http::async_write_header(stream_, rs, kTuple);
      x_.bytes += hn;
      if (hec) co_return false;
    }
    while (!rs.is_done()) {
      if (!rp.is_done()) {
        body.data = buf;
        body.size = BufferPool::kSize;
        conn_.deadline.arm_after(server_timeout, &up);
        auto [rec, rn] = co_await http::async_read_some(up, up_in, rp, kTuple);
        if (rec == http::error::need_buffer) rec = {};
        // Mid-response the only honest signal left is cutting the client off.
        if (rec) {
          upstream_broke_ = true;
          co_return false;
        }
        const size_t got = BufferPool::kSize - body.size;
        // A read may parse only chunk framing: a zero-length piece would be
        // serialized as the last chunk, ending the body early.
        if (got == 0 && !rp.is_done()) continue;
        body.data = got ? buf : nullptr;
        body.size = got;
        body.more = !rp.is_done();
      } else {
        body.data = nullptr;  // emits the last chunk
        body.size = 0;
        body.more = false;
      }
      conn_.deadline.arm_after(cfg_.timeouts.client, &conn_.lowest);
      auto [wec, wn] = co_await http::async_write(stream_, rs, kTuple);
      x_.bytes += wn;
      if (wec == http::error::need_buffer) wec = {};
      if (wec) co_return false;
    }
    co_return true;
  }

  awaitable<void> redirect(std::string_view host, uint16_t port) {
    if (host.empty()) {
      co_await answer(400, "missing host");
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
    location += path_;
    location += "\r\n";
    co_await answer(308, "redirecting to https", location);
  }

  // Answers with a short text body and closes afterwards unless told
  // otherwise by the caller's return value.
  awaitable<void> answer(unsigned status, std::string_view reason,
                         std::string_view extra_headers = {}) {
    answer_.clear();
    answer_ += "HTTP/1.1 ";
    answer_ += std::to_string(status);
    answer_ += ' ';
    answer_ += http::obsolete_reason(static_cast<http::status>(status));
    answer_ += "\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nContent-Length: ";
    answer_ += std::to_string(reason.size() + 1);
    answer_ += "\r\n";
    answer_ += extra_headers;
    // 503 before the body was read, and every protocol error, close.
    answer_ += "Connection: close\r\n\r\n";
    answer_ += reason;
    answer_ += '\n';
    conn_.deadline.arm_after(cfg_.timeouts.client, &conn_.lowest);
    conn_.linger = true;
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(answer_), kTuple);
    x_.status = status;
    x_.bytes += n;
    x_.server = {};
    x_.answered_by = nullptr;
    log_exchange();
  }

  // Ends the request's bookkeeping: persistence outcome counted once per
  // request (its final decision, after any retries), then the log line.
  void log_exchange() {
    const auto now = Clock::now();
    if (x_.persist_known && backend_) backend_->backend->persistence_counters().count(x_.persist);
    const bool persistent = x_.persist == affinity::PersistOutcome::kCookieHit ||
                            x_.persist == affinity::PersistOutcome::kLearnHit ||
                            x_.persist == affinity::PersistOutcome::kSourceHit;
    w_.stats.request_done(x_.backend_index, x_.answered_by, x_.status,
                          std::chrono::duration_cast<std::chrono::microseconds>(now - x_.start),
                          x_.persist_known && persistent);
    if (!w_.access_log.enabled()) return;
    AccessRecord r;
    r.client_ip = conn_.client_ip;
    r.client_port = conn_.client.port;
    r.start = x_.start_wall;
    r.listener = conn_.listener.config->name;
    r.backend = x_.backend.empty() ? std::string_view("-") : x_.backend;
    r.server = x_.server.empty() ? std::string_view("-") : x_.server;
    r.tq = x_.head_done == Clock::time_point{} ? -1 : ms_since(x_.start, x_.head_done);
    r.tw = x_.tw;
    r.tc = x_.tc;
    r.tr = x_.tr;
    r.tt = ms_since(x_.start, now);
    r.status = x_.status;
    r.bytes = x_.bytes;
    r.persist = x_.persist_known ? affinity::to_string(x_.persist) : "-";
    r.retries = x_.retries;
    r.method = method_;
    r.path = path_;
    r.protocol = http10_ ? "HTTP/1.0" : "HTTP/1.1";
    w_.access_log.write(r);
  }

  // A body relay buffer for the duration of one request.
  struct Lease {
    explicit Lease(BufferPool& p) : pool(p), buf(p.take()) {}
    ~Lease() { pool.give_back(std::move(buf)); }
    BufferPool& pool;
    std::unique_ptr<char[]> buf;
  };

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

  Stream& stream_;
  ClientConnection& conn_;
  WorkerContext& w_;
  const config::GatewayConfig& cfg_;
  HeadLimits limits_;
  beast::flat_buffer in_;
  HeadScan scan_;
  Exchange x_;
  bool http10_ = false;
  bool upstream_broke_ = false;  // set by relay_response when the server failed
  // The connection's pin for requests without persistence (see AffinityRequest).
  affinity::Server* pin_ = nullptr;
  BackendRuntime* backend_ = nullptr;  // the current request's backend
  int pin_backend_ = -1;
  // Reused across requests so steady-state requests don't allocate for them.
  std::string method_, path_, answer_, set_cookie_;
  std::string cookie_joined_, cookie_rest_, cookie_value_, learn_value_;
  std::vector<std::string> set_cookies_;
};

}  // namespace

awaitable<void> serve_http1(PlainStream& stream, ClientConnection& conn) {
  Http1Session<PlainStream> session(stream, conn);
  co_await session.run();
}

awaitable<void> serve_http1(TlsStream& stream, ClientConnection& conn) {
  Http1Session<TlsStream> session(stream, conn);
  co_await session.run();
}

}  // namespace sag::session
