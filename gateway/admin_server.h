// The admin listener (SPEC §5): stats page, Prometheus metrics, the backends
// API (read and change a server's state and weight) and a health probe, on
// `admin.bind`, with optional basic auth.
//
// AdminServer runs on its own thread and io_context, so it answers while the
// workers drain during a graceful stop; stop it last. What it reads is
// shared with the workers through atomics only (Server, PersistenceCounters,
// GatewayStats); a PUT writes a Server's admin state and weight the same way.
//
// AdminHandler is the whole HTTP-independent logic (routing, auth, the
// bodies; admin_server.cc): AdminServer only moves bytes, and bounds what
// clients may hold so that /healthz stays reachable under a flood of idle
// or slow connections (admin_listener.cc, admin_connections.h). The free
// functions in `admin` are exposed for tests.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "affinity/backend.h"
#include "config/gateway_config.h"
#include "session/gateway_stats.h"

namespace sag::gateway {

namespace admin {

// A PUT /api/backends/{b}/servers/{s} body: {"state": "ready"|"drain"|"maint",
// "weight": 0..affinity::kMaxWeight}, both optional. nullopt with `error` set (a short
// sentence for the client) on anything else: not a JSON object, a
// duplicate or unknown key, a wrong type, a bad state, a weight out of range
// or not an integer, trailing bytes.
struct ServerPatch {
  std::optional<affinity::AdminState> state;
  std::optional<uint32_t> weight;
};
std::optional<ServerPatch> parse_server_patch(std::string_view body, std::string& error);

// Appends s as a JSON string literal (quotes included): ", \ and control
// characters escaped, invalid UTF-8 replaced by U+FFFD.
void append_json_string(std::string& out, std::string_view s);
// Appends s escaped for a Prometheus label value (\\, \", \n).
void append_label_value(std::string& out, std::string_view s);
// Appends s escaped for HTML text and attribute values (& < > " ').
void append_html(std::string& out, std::string_view s);

// Strict base64 (RFC 4648 alphabet, padding optional but exact when present);
// nullopt on any other byte.
std::optional<std::string> base64_decode(std::string_view in);
// The decoded "user:password" of an `Authorization: Basic ...` value
// (scheme case-insensitive); nullopt when it isn't one.
std::optional<std::string> basic_credentials(std::string_view authorization);

}  // namespace admin

struct AdminRequest {
  std::string_view method;         // "GET", "PUT", ...
  std::string_view target;         // origin-form, query allowed (ignored)
  std::string_view authorization;  // the Authorization header, empty if absent
  std::string_view body;
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  std::string allow;            // for 405: the Allow header
  bool challenge = false;       // for 401: WWW-Authenticate: Basic realm="sag"
  bool head = false;            // answer to HEAD: send the head only
};

namespace admin {
// {"error": message} as JSON with this status: the API's error answers, and
// the transport's for requests it can't read (400, 413, 431).
AdminResponse error_response(unsigned status, std::string_view message);
}  // namespace admin

class AdminHandler {
 public:
  struct Hooks {
    // The last active health check result of a server for display, e.g.
    // "200 in 3ms". Called on the admin thread: must be thread-safe.
    // Absent: "-".
    std::function<std::string(const affinity::Server&)> last_check;
    // After a PUT with a state and/or a weight, on the admin thread, with
    // the server's state and weight as the PUT left them: e.g. to publish
    // them to other replicas. Optional.
    std::function<void(const affinity::Backend&, const affinity::Server&, affinity::AdminState state,
                       uint32_t weight)>
        on_change;
  };

  // `config->admin` gives the credentials (auth when both user and password
  // are non-empty). The BackendSet and stats must outlive the handler.
  AdminHandler(std::shared_ptr<const config::GatewayConfig> config, affinity::BackendSet& backends,
               const session::GatewayStats& stats, Hooks hooks);

  AdminResponse handle(const AdminRequest& request) const;

  // The bodies, exposed for tests.
  std::string metrics() const;
  std::string backends_json() const;
  std::string stats_page() const;

  // /healthz answers 503 "draining" instead of 200 "ok" once set (optional:
  // a load balancer in front can then take the replica out while it drains).
  void set_draining(bool d) { draining_.store(d, std::memory_order_relaxed); }

 private:
  AdminResponse route(const AdminRequest& request) const;
  bool authorized(std::string_view authorization) const;
  AdminResponse put_server(std::string_view backend, std::string_view server,
                           std::string_view body) const;
  void append_server_json(std::string& out, size_t backend_index,
                          const affinity::Server& s) const;
  std::string last_check(const affinity::Server& s) const;

  std::shared_ptr<const config::GatewayConfig> config_;
  affinity::BackendSet& backends_;
  const session::GatewayStats& stats_;
  Hooks hooks_;
  bool auth_ = false;
  std::array<unsigned char, 32> expected_digest_{};  // SHA-256 of "user:password"
  std::atomic<bool> draining_{false};
};

class AdminServer {
 public:
  using Hooks = AdminHandler::Hooks;

  // Binds config->admin->endpoint and starts serving on a thread of its own.
  // nullptr with `error` set when there is no admin section or the bind
  // fails. The BackendSet and stats must outlive the AdminServer.
  static std::unique_ptr<AdminServer> start(std::shared_ptr<const config::GatewayConfig> config,
                                            affinity::BackendSet& backends,
                                            const session::GatewayStats& stats, Hooks hooks,
                                            std::string& error);
  ~AdminServer();  // stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Closes the listener and every admin connection, joins the thread.
  // Idempotent; not from the admin thread itself.
  void stop();
  uint16_t port() const;  // the bound port (useful with port 0)
  AdminHandler& handler();

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sag::gateway
