#include "session/exchange.h"

#include "session/access_log.h"
#include "session/client_connection.h"
#include "session/worker_context.h"

namespace sag::session {

int64_t ms_since(Exchange::Clock::time_point from, Exchange::Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

void finish_exchange(ClientConnection& conn, Exchange& x) {
  if (x.logged) return;
  x.logged = true;
  WorkerContext& w = conn.worker;
  const auto now = Exchange::Clock::now();
  const BackendRuntime* br = x.backend;
  if (br && x.persist) br->backend->persistence_counters().count(*x.persist);
  const bool persistent = x.persist == affinity::PersistOutcome::kCookieHit ||
                          x.persist == affinity::PersistOutcome::kLearnHit ||
                          x.persist == affinity::PersistOutcome::kSourceHit;
  w.stats.request_done(br ? br->backend->id() : GatewayStats::kNoBackend, x.answered_by, x.status,
                       std::chrono::duration_cast<std::chrono::microseconds>(now - x.start),
                       persistent);
  AccessLog& log = *(x.gen ? x.gen : conn.gen)->access_log;
  if (!log.enabled()) return;
  AccessRecord r;
  r.client_ip = conn.client_ip;
  r.client_port = conn.client.port;
  // Where the start was not stamped with the wall clock (HTTP/1.1 requests
  // after a connection's first), it is this moment less the time taken.
  r.start = x.start_wall != std::chrono::system_clock::time_point{}
                ? x.start_wall
                : std::chrono::system_clock::now() -
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(now - x.start);
  r.listener = conn.listener->config->name;
  r.backend = br ? std::string_view(br->backend->name()) : std::string_view("-");
  r.server = x.server.empty() ? std::string_view("-") : x.server;
  r.tq = x.head_done == Exchange::Clock::time_point{} ? -1 : ms_since(x.start, x.head_done);
  r.tw = x.tw;
  r.tc = x.tc;
  r.tr = x.tr;
  r.tt = ms_since(x.start, now);
  r.status = x.status;
  r.bytes = x.bytes;
  r.persist = x.persist ? affinity::to_string(*x.persist) : "-";
  r.retries = x.retries;
  r.method = x.method;
  r.path = x.path;
  r.protocol = x.protocol;
  r.termination = to_string(x.termination);
  log.write(r);
}

}  // namespace sag::session
