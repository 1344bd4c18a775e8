// Chooses the backend of a request on one listener from its Host and path
// (docs/configuration.md `routes`): routes in config order, first match wins, then the
// listener's `backend`. Built once per listener at start-up; lookups don't
// allocate.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/gateway_config.h"

namespace sag::session {

class Router {
 public:
  // Backend names are resolved to indices into config.backends.
  Router(const config::ListenerConfig& listener, const config::GatewayConfig& config);

  // Index into the config's backends, or -1 when nothing matches.
  int select(std::string_view host, std::string_view path) const;

 private:
  struct Route {
    std::string host;  // lowercase; "" = any; ".example.com" for "*.example.com"
    std::string path_prefix;
    int backend = -1;
  };
  static bool host_matches(const std::string& pattern, std::string_view host);

  std::vector<Route> routes_;
  int default_backend_ = -1;
};

}  // namespace sag::session
