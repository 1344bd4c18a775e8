// The admin listener: stats page, Prometheus metrics, the backends API
// (read and change a server's state and weight) and a health probe, on
// `admin.bind`, with optional basic auth.
//
// AdminServer runs on its own thread and io_context, so it answers while the
// workers drain during a graceful stop; stop it last. What it reads is
// shared with the workers through atomics only (Server, PersistenceCounters,
// GatewayStats); a PUT writes a Server's admin state and weight the same way.
//
// AdminHandler is the whole HTTP-independent logic: it routes a request to
// its body (admin_api, prometheus, stats_page) after basic_auth.
// AdminServer only moves bytes, and bounds what clients may hold so that
// /healthz stays reachable under a flood of idle or slow connections
// (admin_listener.cc, admin_connections.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "affinity/model/backend.h"
#include "config/gateway_config.h"
#include "gateway/admin/admin_api.h"
#include "gateway/admin/admin_message.h"
#include "gateway/admin/basic_auth.h"
#include "session/gateway_stats.h"

namespace sag::gateway {

class AdminHandler {
 public:
  struct Hooks {
    // The last active health check result of a server for display, e.g.
    // "200 in 3ms". Called on the admin thread: must be thread-safe.
    // Absent: "-".
    admin::LastCheck last_check;
    // After a PUT with a state and/or a weight, on the admin thread, with
    // the server's state and weight as the PUT left them: e.g. to publish
    // them to other replicas. Optional.
    admin::AdminApi::OnChange on_change;
  };

  // `config->admin` gives the credentials (auth when both user and password
  // are non-empty). The BackendSet and stats must outlive the handler (the
  // BackendSet: or the next update()).
  AdminHandler(std::shared_ptr<const config::GatewayConfig> config, affinity::BackendSet& backends,
               const session::GatewayStats& stats, Hooks hooks);

  // A reload: requests from now on see `config` (credentials included) and
  // `backends`; `listener_ids` are the stats ids of config->listeners;
  // `keep` is held as long as they are in use (what owns the BackendSet).
  // Thread-safe; requests under way finish with what they started with.
  void update(std::shared_ptr<const config::GatewayConfig> config, affinity::BackendSet& backends,
              std::vector<uint32_t> listener_ids, std::shared_ptr<const void> keep);

  AdminResponse handle(const AdminRequest& request) const;

  // The bodies, exposed for tests.
  std::string metrics() const;
  std::string backends_json() const;
  std::string stats_page() const;

  // /healthz answers 503 "draining" instead of 200 "ok" once set (optional:
  // a load balancer in front can then take the replica out while it drains).
  void set_draining(bool d) { draining_.store(d, std::memory_order_relaxed); }

 private:

  // What one config generation gives the handler.
  struct View {
    View(std::shared_ptr<const config::GatewayConfig> c, affinity::BackendSet& b,
         const session::GatewayStats& stats, const Hooks& hooks, std::vector<uint32_t> ids,
         std::shared_ptr<const void> k);
    std::shared_ptr<const config::GatewayConfig> config;
    affinity::BackendSet& backends;
    admin::BasicAuth auth;
    admin::AdminApi api;
    std::vector<uint32_t> listener_ids;
    std::shared_ptr<const void> keep;
  };
  std::shared_ptr<const View> view() const;
  AdminResponse route(const View& v, const AdminRequest& request) const;
  std::optional<AdminResponse> route_server(const View& v, std::string_view path,
                                            const AdminRequest& request) const;

  const session::GatewayStats& stats_;
  const Hooks hooks_;
  mutable std::mutex view_mu_;
  std::shared_ptr<const View> view_;  // under view_mu_
  std::atomic<bool> draining_{false};
};

class AdminServer {
 public:
  using Hooks = AdminHandler::Hooks;

  // Binds config->admin->endpoint (or takes `inherited_fd`, a socket
  // listening there, from the process it upgrades) and starts serving on a
  // thread of its own.
  // nullptr with `error` set when there is no admin section or the bind
  // fails. The BackendSet and stats must outlive the AdminServer.
  static std::unique_ptr<AdminServer> start(std::shared_ptr<const config::GatewayConfig> config,
                                            affinity::BackendSet& backends,
                                            const session::GatewayStats& stats, Hooks hooks,
                                            std::string& error, int inherited_fd = -1);
  ~AdminServer();  // stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Closes the listener and every admin connection, joins the thread.
  // Idempotent; not from the admin thread itself.
  void stop();
  uint16_t port() const;  // the bound port (useful with port 0)
  int native_fd() const;  // the listening socket (a binary upgrade hands it over)
  AdminHandler& handler();

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sag::gateway
