// Carries one request from any client protocol to a server of its backend
// and the response back, as named steps (session/forward/*): request
// checks, routing, persistence inputs, the upstream request, choosing and
// reaching a server under the retry policy, then the response's
// persistence headers and its relay. docs/behaviour.md describes each step
// for operators.
//
// Thread: the connection's worker; one Forwarder per in-flight exchange
// (HTTP/1.1: per connection, reused; HTTP/2: per stream).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include "config/base/block_cache.h"
#include "session/gateway_error.h"
#include "session/http_message.h"
#include "session/client_port.h"
#include "session/exchange.h"
#include "session/forward/persistence_headers.h"
#include "session/forward/server_connection.h"

namespace sag::affinity {
class Backend;
class Server;
}

namespace sag::session {

struct BackendRuntime;
struct ClientConnection;
class Deadline;

// Requests without persistence on one client connection follow the server
// the first of them was balanced to (docs/behaviour.md#connection-pin).
// They also get the same cookie: issued once with the same dates, and issued
// anew only once those would need refreshing.
struct ConnectionPin {
  // By ids, which outlive a reload (a Server* may not): the backend's id,
  // the server's id and its State (to tell a later server given the same id
  // apart; compared, never dereferenced).
  static constexpr uint32_t kNone = UINT32_MAX;
  uint32_t backend = kNone;
  uint32_t server = 0;
  const void* state = nullptr;
  std::optional<int64_t> issued;  // Unix seconds the pinned cookie was issued at

  // The pinned server as `b` (of whichever generation) has it; null when
  // the pin is elsewhere or its server is gone.
  affinity::Server* in(const affinity::Backend& b) const;
  bool is(const affinity::Backend& b, const affinity::Server& s) const;
  // Pins `s`; the cookie's issue date is kept only when the pin stays.
  void set(const affinity::Backend& b, const affinity::Server& s);
};

class Forwarder {
 public:
  using Request = session::Request;

  // `deadline` bounds the server side of the exchange (its watch() must be
  // running); all references outlive the Forwarder.
  Forwarder(ClientConnection& conn, ConnectionPin& pin, Deadline& deadline);

  // Forwards `req` (head validated for framing; target in origin form or
  // "*"; Host set) and relays the response through `port`. `x` has the
  // request's start, head time, method and path. Returns true when the
  // exchange completed cleanly and the client connection may carry more;
  // the exchange is logged either way.
  //
  // While it waits for its server, an exchange is this one coroutine frame
  // and a Pending (its state, with the server connection) from the worker's
  // block cache: hundreds of HTTP/2 streams wait at once, and a stack of
  // frames each would hold kilobytes the caches don't keep.
  boost::asio::awaitable<bool> forward(Request& req, ClientPort& port, Exchange& x);

 private:
  // How respond() ended: the access log's termination follows from it.
  enum class Ending : uint8_t {
    kCut,        // answered by the gateway, or cut (client gone, server broke)
    kComplete,   // the response went out whole: the connection may carry more
    kTunnelled,  // the tunnel after a 101 ended: the connection is done
  };
  struct Pending;
  using PendingPtr = base::Pooled<Pending>;
  // How an attempt begins, or that none is left.
  enum class Start : uint8_t { kReused, kConnect, kNone };
  // What follows a failed attempt.
  enum class AfterFailure : uint8_t { kRetry, kAnswer, kClientGone };

  // The checks, routing and persistence inputs, and the request rewritten
  // for the server: the exchange's state, or null with the answer the
  // client gets instead in `error` and `extra_headers`.
  PendingPtr prepare(Request& req, ClientPort& port, Exchange& x, GatewayError& error,
                     std::string_view& extra_headers);
  // Chooses the server of the next attempt (pinning the connection to it)
  // and takes a pooled connection to it when there is one. kNone: every
  // server failed or none is usable; p.answer is the client's answer.
  Start start_attempt(Pending& p);
  // The attempt failed (`connected`: after the connection was made, with
  // `st` from sending, awaiting the head or prefetching the body), or the
  // client went meanwhile: whether to try again, with the retry policy's
  // bookkeeping done, or answer p.answer.
  AfterFailure failed_attempt(Pending& p, ServerConnection::Status st, bool connected);
  // The response head arrived `sent_at` after the request went: timings.
  void head_arrived(Pending& p, std::chrono::steady_clock::time_point sent_at);
  // The response, rewritten for the client and relayed (or tunnelled).
  boost::asio::awaitable<Ending> respond(Pending& p);
  // Unix seconds the insert-mode cookie carries: the connection's pinned
  // cookie keeps its dates until they would need refreshing.
  int64_t cookie_issued(const Pending& p);

  ClientConnection& conn_;
  ConnectionPin& pin_;
  Deadline& deadline_;
  PersistenceHeaders persistence_;
  std::string location_;  // a redirect's Location line, reused
};

}  // namespace sag::session
