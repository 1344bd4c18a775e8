// The JSON API of the admin listener: /api/backends and
// /api/backends/{backend}/servers/{server} (GET, and PUT to change a
// server's admin state and weight).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "affinity/model/backend.h"
#include "gateway/admin/admin_message.h"
#include "gateway/admin/server_view.h"
#include "session/gateway_stats.h"

namespace sag::gateway::admin {

// {"error": message} as JSON with this status: the API's error answers, and
// the transport's for requests it can't read (400, 413, 431).
AdminResponse error_response(unsigned status, std::string_view message);

class AdminApi {
 public:
  // After a PUT with a state and/or a weight, on the admin thread, with the
  // server's state and weight as the PUT left them. Optional.
  using OnChange = std::function<void(const affinity::Backend&, const affinity::Server&,
                                      affinity::AdminState state, uint32_t weight)>;

  // The BackendSet and stats must outlive the API; the hooks are copied.
  AdminApi(affinity::BackendSet& backends, const session::GatewayStats& stats,
           LastCheck last_check, OnChange on_change);

  // {"backends": [...]}: every backend with every server.
  std::string backends_json() const;
  // One server object, or a 404 naming what is unknown.
  AdminResponse get_server(std::string_view backend, std::string_view server) const;
  // Applies a ServerPatch body; answers the server object as it is now.
  AdminResponse put_server(std::string_view backend, std::string_view server,
                           std::string_view body) const;

 private:
  // The index of the backend named `name` in backends_, or npos.
  size_t find_backend(std::string_view name) const;
  void append_server_json(std::string& out, size_t backend_index, const affinity::Server& s) const;

  affinity::BackendSet& backends_;
  const session::GatewayStats& stats_;
  LastCheck last_check_;
  OnChange on_change_;
};

}  // namespace sag::gateway::admin
