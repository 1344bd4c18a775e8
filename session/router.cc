#include "session/router.h"

#include <cctype>

namespace sag::session {
namespace {

int backend_index(const config::GatewayConfig& config, std::string_view name) {
  for (size_t i = 0; i < config.backends.size(); ++i)
    if (config.backends[i].name == name) return static_cast<int>(i);
  return -1;
}

// The host part of a Host header: without port, brackets kept for IPv6.
std::string_view host_only(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

bool iequals_lower(std::string_view lower, std::string_view s) {
  if (lower.size() != s.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (lower[i] != std::tolower(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

}  // namespace

Router::Router(const config::ListenerConfig& listener, const config::GatewayConfig& config) {
  for (const auto& r : listener.routes) {
    Route route;
    for (char c : r.host) route.host += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (route.host.starts_with("*.")) route.host.erase(0, 1);  // keep the dot
    route.path_prefix = r.path_prefix;
    route.backend = backend_index(config, r.backend);
    routes_.push_back(std::move(route));
  }
  if (!listener.backend.empty()) default_backend_ = backend_index(config, listener.backend);
}

bool Router::host_matches(const std::string& pattern, std::string_view host) {
  if (pattern.empty()) return true;
  host = host_only(host);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // FQDN form
  if (pattern.front() == '.') {
    // "*.example.com" matches any name below example.com, not example.com.
    return host.size() > pattern.size() &&
           iequals_lower(pattern, host.substr(host.size() - pattern.size()));
  }
  return iequals_lower(pattern, host);
}

int Router::select(std::string_view host, std::string_view path) const {
  for (const auto& r : routes_) {
    if (host_matches(r.host, host) && path.starts_with(r.path_prefix)) return r.backend;
  }
  return default_backend_;
}

}  // namespace sag::session
