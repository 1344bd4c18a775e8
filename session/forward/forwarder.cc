#include "session/forward/forwarder.h"

#include <tuple>

#include "affinity/affinity_resolver.h"
#include "affinity/cookie/sticky_cookie.h"
#include "affinity/model/server.h"
#include "config/base/block_cache.h"
#include "session/client_connection.h"
#include "session/forward/http1_server_connection.h"
#include "session/forward/request_checks.h"
#include "session/forward/response_relay.h"
#include "session/forward/retry_policy.h"
#include "session/forward/server_blame.h"
#include "session/forward/upstream_request.h"
#include "session/header_rules.h"

namespace sag::session {
namespace http = boost::beast::http;
using boost::asio::awaitable;
using Clock = std::chrono::steady_clock;
using Status = ServerConnection::Status;

namespace {

constexpr size_t kMaxExcluded = 16;

// Counts a failure of `server` on real traffic and ejects it once the
// backend's passive threshold is reached; the health checker ends it.
void passive_failure(const BackendRuntime& br, affinity::Server& server) {
  const auto& passive = br.backend->config().passive;
  const uint32_t failures = server.record_failure();
  if (passive && failures >= passive->consecutive_failures) server.eject(Clock::now());
}

// The gateway's answer to a failed attempt.
GatewayError answer_for(AttemptFailure failure, const ServerConnection::Failure& f) {
  switch (failure) {
    case AttemptFailure::kConnect:
      return GatewayError::kConnectFailed;
    case AttemptFailure::kTimeout:
      return GatewayError::kServerTimeout;
    case AttemptFailure::kServer:
      break;
  }
  return f.invalid_http ? GatewayError::kBadResponse : GatewayError::kServerFailed;
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

// The relay buffer (BufferPool::kSize bytes), leased from the worker's pool
// when asked for and given back while the exchange waits for its server:
// hundreds of HTTP/2 streams waiting would otherwise each hold one, and the
// bytes of every response would land in memory long gone from the caches.
class RelayBuffer {
 public:
  explicit RelayBuffer(BufferPool& pool) : pool_(pool) {}
  ~RelayBuffer() { drop(); }
  RelayBuffer(const RelayBuffer&) = delete;
  RelayBuffer& operator=(const RelayBuffer&) = delete;
  // The buffer (leased now if it isn't); its bytes last until drop().
  char* get() {
    if (!buf_) buf_ = pool_.take();
    return buf_.get();
  }
  void drop() {
    if (buf_) pool_.give_back(std::move(buf_));
  }

 private:
  BufferPool& pool_;
  std::unique_ptr<char[]> buf_;
};

}  // namespace

// One request on its way: what forward() keeps across its waits, in one
// block from the worker's cache (an idle connection holds none of it).
struct Forwarder::Pending {
  Pending(WorkerContext& w, const BackendRuntime& backend, Deadline& deadline, Request& request,
          ClientPort& client, Exchange& exchange)
      : req(request), port(client), x(exchange), br(backend), up(w, backend, deadline),
        relay(w.buffers) {}

  Request& req;
  ClientPort& port;
  Exchange& x;
  const BackendRuntime& br;
  const affinity::StickyCookie* sticky = nullptr;
  config::IpAddress origin;
  affinity::AffinityRequest input;  // persistence inputs (excluded set per attempt)
  Http1ServerConnection up;
  RelayBuffer relay;
  bool websocket = false;
  bool replayable = false;  // idempotent and without a body
  ServerGuard guard{};
  affinity::AffinityDecision decision{};
  // The attempts so far: servers excluded after failing, attempts charged
  // against `retries` (stale replays are free), and the last server that
  // failed and how, for the answer when no other server is left.
  uint32_t excluded[kMaxExcluded];
  uint32_t n_excluded = 0;
  uint32_t charged = 0;
  const affinity::Server* last_failed = nullptr;
  GatewayError last_error = GatewayError::kNoServer;
  ServerConnection::Failure last_failure;
  GatewayError answer = GatewayError::kNoServer;  // when the exchange gives up
};

affinity::Server* ConnectionPin::in(const affinity::Backend& b) const {
  if (backend != b.id()) return nullptr;
  affinity::Server* s = b.server(server);
  return s && s->state().get() == state ? s : nullptr;
}

bool ConnectionPin::is(const affinity::Backend& b, const affinity::Server& s) const {
  return backend == b.id() && server == s.index() && state == s.state().get();
}

void ConnectionPin::set(const affinity::Backend& b, const affinity::Server& s) {
  if (is(b, s)) return;
  issued.reset();
  backend = b.id();
  server = s.index();
  state = s.state().get();
}

Forwarder::Forwarder(ClientConnection& conn, ConnectionPin& pin, Deadline& deadline)
    : conn_(conn), pin_(pin), deadline_(deadline) {}

awaitable<bool> Forwarder::forward(Request& req, ClientPort& port, Exchange& x) {
  // Logs the exchange however forward() returns. An exit that neither
  // completed the response (or the tunnel) nor answered (which sets the
  // termination) means the client went away or stopped reading.
  bool done = false;
  struct LogOnExit {
    ClientConnection& conn;
    Exchange& x;
    const bool& done;
    ~LogOnExit() {
      if (!done && x.termination == Termination::kOk)
        x.termination =
            conn.deadline.fired() ? Termination::kClientTimeout : Termination::kClientClose;
      finish_exchange(conn, x);
    }
  } log_on_exit{conn_, x, done};

  GatewayError refusal = GatewayError::kNoServer;
  std::string_view extra_headers;
  const PendingPtr pending = prepare(req, port, x, refusal, extra_headers);
  if (!pending) {
    co_await port.answer(refusal, {}, extra_headers);
    co_return false;
  }
  Pending& p = *pending;
  // Attempts, until one has the response head (and a small body) or the
  // retry policy gives up. The common case waits only for the head, here,
  // in this frame.
  for (;;) {
    const Start start = start_attempt(p);
    if (start == Start::kNone) break;
    Status st = Status::kOk;
    if (start == Start::kConnect) {
      const auto connect_start = Clock::now();
      st = co_await p.up.connect(p.decision.server->index());
      if (port.client_gone()) co_return false;
      if (st == Status::kOk) x.tc = ms_since(connect_start, Clock::now());
    }
    const bool connected = st == Status::kOk;
    const auto going = [&] { return st == Status::kOk && !port.client_gone(); };
    if (connected) {
      p.guard.start(p.decision.server);
      if (!p.up.send_request_now(req, port, p.relay.get(), BufferPool::kSize, st))
        st = co_await p.up.send_request(req, port, p.relay.get(), BufferPool::kSize);
      // The request went whole (body included) or failed: nothing in the
      // buffer is needed while the server thinks.
      p.relay.drop();
      const auto sent_at = Clock::now();
      boost::system::error_code waited;
      while (going() && !p.up.read_response_head_now(req.method(), waited, st))
        std::tie(waited) = co_await p.up.wait_response();
      // A body that fits the relay buffer is read whole before anything goes
      // to the client: a server dying mid-response is then still a failure
      // the client need not see (replay, or a clean 502), and head and body
      // leave together.
      if (going()) {
        head_arrived(p, sent_at);
        if (p.up.prefetchable(BufferPool::kSize) &&
            !p.up.prefetch_buffered(p.relay.get(), BufferPool::kSize))
          st = co_await p.up.prefetch_body(p.relay.get(), BufferPool::kSize);
      }
      if (going()) {
        const Ending ending = co_await respond(p);
        done = ending != Ending::kCut;
        co_return ending == Ending::kComplete;
      }
    }
    const AfterFailure next = failed_attempt(p, st, connected);
    if (next == AfterFailure::kClientGone) co_return false;
    if (next == AfterFailure::kAnswer) break;
  }
  co_await port.answer(p.answer);
  co_return false;
}

Forwarder::PendingPtr Forwarder::prepare(Request& req, ClientPort& port, Exchange& x,
                                         GatewayError& error, std::string_view& extra_headers) {
  if (auto refusal = check_request(req)) {
    error = refusal->error;
    extra_headers = refusal->extra_headers;
    return nullptr;
  }
  const std::string_view host = req[http::field::host];
  const ListenerRuntime& l = *conn_.listener;
  if (l.config->redirect_https) {
    error = GatewayError::kMissingHost;
    if (redirect_location(host, *l.config->redirect_https, x.path, location_)) {
      error = GatewayError::kRedirect;
      extra_headers = location_;
    }
    return nullptr;
  }
  const int backend_index = l.router ? l.router->select(host, req.target()) : -1;
  if (backend_index < 0) {
    error = GatewayError::kNoRoute;
    return nullptr;
  }
  // The exchange holds the generation: the runtime it routes with stays
  // whatever a reload does until the exchange is logged.
  x.gen = conn_.gen;
  const WorkerGeneration& g = *x.gen;
  const BackendRuntime& br = g.backends[static_cast<size_t>(backend_index)];
  const auto& persistence = br.backend->config().persistence;
  x.backend = &br;
  PendingPtr pending = base::make_pooled<Pending>(conn_.worker, br, deadline_, req, port, x);
  Pending& p = *pending;

  // Persistence inputs, read before the request is rewritten for the server.
  p.sticky = br.backend->cookie();
  const auto cookies = persistence_.read_request(req, p.sticky, persistence);
  p.origin = original_client(req, g.config->forwarded, conn_.client);
  p.input.cookie = cookies.cookie;
  p.input.learn = cookies.learn;
  p.input.source = persistence.source ? &p.origin : nullptr;
  p.input.hash = persistence_.request_hash(br.hash_source, br.hash_name, req, p.origin);

  p.websocket = port.can_tunnel() && is_websocket_upgrade(req);
  p.replayable = !port.has_body() && is_idempotent(req.method());
  prepare_upstream_request(req, p.websocket, g.config->forwarded, conn_.client, host);
  return pending;
}

Forwarder::Start Forwarder::start_attempt(Pending& p) {
  WorkerContext& w = conn_.worker;
  Exchange& x = p.x;
  // Read at every attempt, not once: while this request waited, another
  // stream of the connection may have moved the pin (its server failed),
  // and a retry must follow it rather than balance afresh.
  p.input.connection_pin = pin_.in(*p.br.backend);
  p.input.now = w.clock.unix_seconds();
  p.input.steady_now = w.clock.steady_now();
  p.input.excluded = {p.excluded, p.n_excluded};
  p.decision = p.br.resolver->resolve(p.input);
  x.persist = p.decision.outcome;
  if (!p.decision.server) {
    // Every server was tried and failed: the answer is the last failure
    // (a 502 naming its server, or connect-failed), not "no server".
    if (p.last_failed && p.last_error != GatewayError::kConnectFailed)
      blame_server(w, x, *p.last_failed, info(p.last_error).status, p.last_failure.what,
                   p.last_failure.ec);
    p.answer = p.last_failed ? p.last_error : GatewayError::kNoServer;
    return Start::kNone;
  }
  // Decided before any wait, so streams multiplexed behind this one
  // follow it even while this request is still in flight, whatever the
  // persistence mode (with learn only, the server's cookie arrives with
  // the first response, after its pipelined followers left).
  pin_.set(*p.br.backend, *p.decision.server);
  x.server = p.decision.server->name();
  x.tw = 0;
  if (!p.up.reuse(p.decision.server->index())) return Start::kConnect;
  x.tc = 0;
  return Start::kReused;
}

Forwarder::AfterFailure Forwarder::failed_attempt(Pending& p, Status st, bool connected) {
  WorkerContext& w = conn_.worker;
  affinity::Server& server = *p.decision.server;
  Attempt a;
  a.failure = AttemptFailure::kConnect;
  if (connected) {
    p.guard.finish();
    p.up.close();
    if (st == Status::kClientFailed || p.port.client_gone()) return AfterFailure::kClientGone;
    a.failure = p.up.failure().timed_out ? AttemptFailure::kTimeout : AttemptFailure::kServer;
  }
  a.reused = p.up.reused();
  a.response_byte = p.up.response_started();
  a.replayable = p.replayable;
  a.charged = p.charged;
  a.retries = p.br.backend->config().retries;
  const RetryVerdict verdict = decide_retry(a);
  if (verdict.server_failed) passive_failure(p.br, server);
  const GatewayError error = answer_for(a.failure, p.up.failure());
  if (verdict.action == RetryVerdict::kReplayFresh) {
    // The server closed a pooled connection just as it was reused: its
    // idle connections go (the older ones are as stale), and the next
    // attempt opens a fresh one, so this can't repeat for the server.
    p.br.pool->drop(server.index());
  } else if (verdict.action == RetryVerdict::kTryAnother) {
    if (p.n_excluded < kMaxExcluded) p.excluded[p.n_excluded++] = server.index();
    p.last_failed = &server;
    p.last_error = error;
    p.last_failure = p.up.failure();
    ++p.charged;
  } else {
    if (a.failure == AttemptFailure::kTimeout) {
      blame_server(w, p.x, server, 504, "no response within timeouts.server", {});
    } else if (a.failure == AttemptFailure::kServer) {
      blame_server(w, p.x, server, 502, p.up.failure().what, p.up.failure().ec);
    }
    p.answer = error;
    return AfterFailure::kAnswer;
  }
  ++p.x.retries;  // replays are logged and counted too, though not charged
  w.stats.retry(p.br.backend->id());
  return AfterFailure::kRetry;
}

void Forwarder::head_arrived(Pending& p, Clock::time_point sent_at) {
  const auto head_at = Clock::now();
  p.x.tr = ms_since(sent_at, head_at);
  p.decision.server->record_response_time(
      std::chrono::duration_cast<std::chrono::microseconds>(head_at - sent_at));
}

awaitable<Forwarder::Ending> Forwarder::respond(Pending& p) {
  WorkerContext& w = conn_.worker;
  Exchange& x = p.x;
  affinity::Server& server = *p.decision.server;
  auto& res = p.up.response();
  const unsigned status = res.result_int();
  const http::verb method = p.req.method();
  if (status == 101 && !p.websocket) {
    // Switching protocols nobody asked for: the connection is unusable, but
    // the server did answer; nothing to hold against it.
    p.guard.finish();
    p.up.close();
    blame_server(w, x, server, 502, "101 Switching Protocols to a request that asked none", {});
    co_await p.port.answer(GatewayError::kUnaskedUpgrade);
    co_return Ending::kCut;
  }
  x.status = status;
  x.answered_by = &server;
  // Passive health: 5xx answers to idempotent requests count as failures.
  if (status >= 500 && is_idempotent(method)) {
    passive_failure(p.br, server);
  } else {
    server.record_success();
  }
  const ResponseFraming framing = prepare_response_head(res, method, p.up.has_declared_length());
  const bool hit = p.decision.outcome == affinity::PersistOutcome::kCookieHit;
  persistence_.process_set_cookies(res, p.br.backend->config().persistence, *p.br.resolver,
                                   w.clock, server, p.sticky,
                                   hit ? p.decision.cookie_created : std::nullopt);
  if (p.decision.set_cookie && p.sticky &&
      p.sticky->config().mode == config::CookieMode::kInsert)
    persistence_.insert_cookie(res, method, *p.sticky, server, cookie_issued(p),
                               conn_.client.tls, p.decision.cookie_created);

  if (status == 101) {
    // The server took the upgrade: the connection is the tunnel's now.
    res.set(http::field::connection, "Upgrade");
    res.set(http::field::upgrade, "websocket");
    p.guard.finish();
    x.bytes += co_await p.port.tunnel(res, p.up.socket(), p.up.input());
    p.up.close();
    co_return Ending::kTunnelled;
  }

  RelayResult r;
  if (p.up.response_done()) {
    // Read whole already (the usual short response): one send, without the
    // relay loop's coroutine.
    const size_t n = p.up.prefetched();
    const char* body = n ? p.relay.get() : nullptr;
    bool sent = false;
    if (!p.port.send_head_now(res, framing, body, n, true, sent))
      sent = co_await p.port.send_head(res, framing, body, n, true);
    r.head_sent = true;
    r.end = sent ? RelayEnd::kComplete : RelayEnd::kClientGone;
  } else {
    r = co_await relay_response(p.up, p.port, framing, p.relay.get(), BufferPool::kSize);
  }
  if (r.end == RelayEnd::kServerBroke) {
    // A server that breaks mid-response is a 502; a client that has the
    // head already sees its connection or stream cut.
    const auto& f = p.up.failure();
    const GatewayError error = answer_for(AttemptFailure::kServer, f);
    p.guard.finish();
    passive_failure(p.br, server);
    blame_server(w, x, server, 502, f.what, f.ec);
    if (!r.head_sent) {
      p.up.close();
      co_await p.port.answer(error);
      co_return Ending::kCut;
    }
    x.status = 502;
    x.termination = info(error).termination;
    p.port.abort();
  }
  p.guard.finish();
  const bool complete = r.end == RelayEnd::kComplete;
  p.up.release(complete);
  co_return complete ? Ending::kComplete : Ending::kCut;
}

int64_t Forwarder::cookie_issued(const Pending& p) {
  const int64_t now = conn_.worker.clock.unix_seconds();
  const bool pinned_here = pin_.is(*p.br.backend, *p.decision.server) &&
                           p.decision.outcome == affinity::PersistOutcome::kNew;
  if (!pinned_here) return now;
  const int64_t refresh = p.sticky->refresh_after_seconds();
  if (!pin_.issued || (refresh > 0 && now - *pin_.issued >= refresh)) pin_.issued = now;
  return *pin_.issued;
}

}  // namespace sag::session
