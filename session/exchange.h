// One request/response as the access log and the metrics see it, whichever
// protocol carried it. Filled in by the protocol session (head timing,
// method, path) and the Forwarder (server, timings, status, persistence);
// finish_exchange() counts and logs it exactly once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "affinity/affinity_resolver.h"
#include "session/gateway_error.h"
#include "session/gateway_stats.h"

namespace sag::session {

struct ClientConnection;
struct BackendRuntime;
struct WorkerGeneration;

struct Exchange {
  using Clock = std::chrono::steady_clock;
  Clock::time_point start;
  // Zero where not read (later requests of an HTTP/1.1 connection): the
  // access log derives it from `start`.
  std::chrono::system_clock::time_point start_wall;
  Clock::time_point head_done;
  int64_t tc = -1, tr = -1, tw = -1;
  unsigned status = 0;
  uint64_t bytes = 0;  // sent to the client for this response, head included
  std::string_view server;
  // The server a gateway answer (502, 504) blames: the log names it, the
  // metrics count the answer as the gateway's (server="-").
  std::string_view blamed;
  affinity::Server* answered_by = nullptr;  // null when the gateway answered
  // Set once routed: the backend's runtime in `gen`, which the exchange
  // holds so that both outlive it whatever a reload does meanwhile.
  const BackendRuntime* backend = nullptr;
  std::shared_ptr<const WorkerGeneration> gen;
  std::optional<affinity::PersistOutcome> persist;  // the final decision, once made
  uint32_t retries = 0;
  Termination termination = Termination::kOk;
  std::string method, path;  // storage reused across requests
  std::string_view protocol = "HTTP/1.1";
  bool logged = false;

  // Starts a new request; keeps the strings' capacity.
  // Member by member (assigning a fresh Exchange built, moved and
  // destroyed a whole one, strings and all, on every request): a member
  // added above must be reset here too (ExchangeTest.ResetIsAFreshExchange).
  void reset() {
    start = {};
    start_wall = {};
    head_done = {};
    tc = tr = tw = -1;
    status = 0;
    bytes = 0;
    server = {};
    blamed = {};
    answered_by = nullptr;
    backend = nullptr;
    gen.reset();
    persist.reset();
    retries = 0;
    termination = Termination::kOk;
    method.clear();
    path.clear();
    protocol = "HTTP/1.1";
    logged = false;
  }
  // The gateway answered itself.
  void answered(GatewayError e, uint64_t sent) {
    status = info(e).status;
    termination = info(e).termination;
    bytes += sent;
    server = blamed;
    answered_by = nullptr;
  }
};

int64_t ms_since(Exchange::Clock::time_point from, Exchange::Clock::time_point to);

// Counts the persistence outcome (once per request, its final decision),
// the request's metrics, and writes the access log line. Idempotent: a
// second call for the same exchange does nothing.
void finish_exchange(ClientConnection& conn, Exchange& x);

}  // namespace sag::session
