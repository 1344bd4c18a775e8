// A config generation (docs/behaviour.md#reload): what a SIGHUP reload
// replaces, built off the request path and never changed once published.
//
// Generation is shared by every worker; WorkerGeneration is one worker's
// view of it (balancers, resolvers: unsynchronised state) and lives on that
// worker's thread. A connection holds the WorkerGeneration it serves with
// and takes the worker's current one at the start of each request, so a
// request finishes on the generation it started with and no lock is taken
// on the request path. The gateway keeps every Generation until it alone
// holds it, so the last reference (TLS contexts, the access log's thread)
// is dropped on the main thread, never on a worker.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "affinity/affinity_resolver.h"
#include "affinity/model/backend.h"
#include "config/gateway_config.h"
#include "session/access_log.h"
#include "session/router.h"
#include "session/upstream_pool.h"

namespace sag::tls {
class ServerTlsContext;
}

namespace sag::session {

// Per listener, shared read-only by all workers.
struct ListenerRuntime {
  const config::ListenerConfig* config = nullptr;
  std::shared_ptr<tls::ServerTlsContext> tls;  // null for plain HTTP
  std::unique_ptr<Router> router;              // null for redirect-only listeners
  uint16_t port = 0;                           // the bound port
  // Stable across generations while the listener's bind is unchanged
  // (stats slot, refusal log, the worker's acceptor).
  uint32_t id = 0;
};

struct Generation {
  uint64_t number = 0;  // 1 at start, +1 per successful reload
  std::shared_ptr<const config::GatewayConfig> config;
  // Shared: the shared admin state keeps the first generation's set (its
  // servers share their State with the same servers of later generations).
  std::shared_ptr<affinity::BackendSet> backends;
  std::vector<ListenerRuntime> listeners;  // config->listeners order
  std::shared_ptr<AccessLog> access_log;

  // By id; null when this generation has no such listener.
  const ListenerRuntime* listener(uint32_t id) const {
    for (const auto& l : listeners)
      if (l.id == id) return &l;
    return nullptr;
  }
};

// Where a hashing balancer's key comes from (hash_key), decided at config
// load.
using HashSource = config::HashSource;

struct BackendRuntime {
  affinity::Backend* backend = nullptr;  // owned by the Generation's BackendSet
  std::unique_ptr<affinity::Balancer> balancer;
  std::unique_ptr<affinity::AffinityResolver> resolver;
  // Kept across generations for the same backend (idle connections to kept
  // servers stay pooled); indexed by server id.
  std::shared_ptr<UpstreamPool> pool;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;  // by server id
  HashSource hash_source = HashSource::kNone;
  std::string hash_name;  // header or cookie name for kHeader / kCookie
};

struct WorkerGeneration {
  std::shared_ptr<const Generation> shared;
  const config::GatewayConfig* config = nullptr;  // *shared->config
  std::vector<BackendRuntime> backends;            // parallel to shared->backends->backends()
  AccessLog* access_log = nullptr;                 // shared->access_log

  // Worker `index`'s view of `gen` (seeded per worker, so random choices
  // differ between workers but are reproducible). `previous`: the worker's
  // view of the generation `gen` replaces; pools of kept backends move over
  // (connections to a server whose address changed, or that is gone, are
  // closed). Call on the worker's thread (pools are thread-confined).
  static std::shared_ptr<WorkerGeneration> build(std::shared_ptr<const Generation> gen,
                                                 unsigned index, affinity::AffinityStore* store,
                                                 const WorkerGeneration* previous);
};

}  // namespace sag::session
