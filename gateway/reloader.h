// SIGHUP: the configuration reload of docs/behaviour.md#reload (SPEC §7).
//
// The whole file is read and validated first, with every certificate, key,
// secret and password file it names, and new listeners are bound; nothing
// changes unless all of that succeeds (a failure is logged error by error
// and counted, and the running generation keeps serving). Then the new
// generation is committed (servers a reload removed are retired, changed
// weights applied), the health checker, admin listener and shared store
// take it, and each worker moves to it on its own thread; the reload is
// done (logged, counted, READY=1 to systemd) once every worker has.
//
// Thread: the gateway's main thread (reload(), prune()); the workers take
// their part through their mailboxes (Worker::adopt).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "gateway/generation_builder.h"
#include "session/generation.h"
#include "session/log_throttle.h"

namespace sag::affinity {
class RedisAffinityStore;
}
namespace sag::session {
class GatewayStats;
}

namespace sag::gateway {

class AdminServer;
class HealthChecker;
class StoreHandover;
class Worker;

class Reloader {
 public:
  // Reads and validates the config file again: the new config, or null
  // with `errors` set (FILE:LINE:COL: message each).
  using Loader = std::function<std::shared_ptr<const config::GatewayConfig>(std::vector<std::string>& errors)>;

  // What a reload reaches; all outlive the Reloader.
  struct Parts {
    std::vector<std::unique_ptr<Worker>>* workers = nullptr;
    HealthChecker* health = nullptr;
    AdminServer* admin = nullptr;                       // optional
    affinity::RedisAffinityStore* redis_store = nullptr;  // optional
    StoreHandover* entries = nullptr;
    session::GatewayStats* stats = nullptr;
    // By listener id; grown for new listeners (references stay valid).
    std::deque<session::LogThrottle>* refusal_logs = nullptr;
  };

  Reloader(Loader loader, const GenerationBuilder& builder,
           std::shared_ptr<const session::Generation> first, Parts parts);

  // SIGHUP. True when the new generation serves.
  bool reload();
  // The generation new connections take.
  const std::shared_ptr<const session::Generation>& current() const { return current_; }
  // Drops the generations nothing uses any more (their TLS contexts, their
  // access log's thread and file), so that never happens on a worker. Call
  // now and then.
  void prune();

 private:
  struct Opened {
    uint32_t listener;
    std::string key;
    int fd;
    bool v6;
  };
  // Binds the listeners `next` has and the current generation lacks, once
  // per worker; false (with `errors`) when one can't be bound.
  bool open_new_listeners(session::Generation& next, std::vector<Opened>& opened,
                          std::vector<std::string>& errors) const;
  // Settings a reload does not apply (they need a restart or an upgrade).
  void warn_unapplied(const config::GatewayConfig& before, const config::GatewayConfig& after) const;
  // Hands `next` to every worker; waits (bounded) until all have it.
  void switch_workers(const std::shared_ptr<const session::Generation>& next,
                      std::vector<Opened> opened) const;
  void refused(const std::vector<std::string>& errors, std::vector<Opened>& opened) const;

  Loader loader_;
  const GenerationBuilder& builder_;
  // The shared admin state refers to the first generation's servers.
  std::shared_ptr<affinity::BackendSet> first_backends_;
  std::shared_ptr<const session::Generation> current_;
  std::vector<std::shared_ptr<const session::Generation>> retired_;
  Parts parts_;
};

// One line for the log: what `next` changed from `before` (servers and
// backends added and removed, listeners opened and closed, certificates
// loaded).
std::string describe_reload(const session::Generation& before, const session::Generation& next);

}  // namespace sag::gateway
