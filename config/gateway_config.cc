#include "config/gateway_config.h"

namespace sag::config {

// The names are the YAML spellings, so logs, the admin API and the config
// file all say the same thing.
const char* to_string(BalanceAlgorithm a) {
  switch (a) {
    case BalanceAlgorithm::kRoundRobin: return "roundrobin";
    case BalanceAlgorithm::kLeastConn: return "leastconn";
    case BalanceAlgorithm::kLeastTime: return "least_time";
    case BalanceAlgorithm::kSource: return "source";
    case BalanceAlgorithm::kHash: return "hash";
    case BalanceAlgorithm::kRandom: return "random";
  }
  return "?";
}

const char* to_string(CookieMode m) {
  switch (m) {
    case CookieMode::kInsert: return "insert";
    case CookieMode::kRewrite: return "rewrite";
    case CookieMode::kPrefix: return "prefix";
  }
  return "?";
}

const char* to_string(SameSite s) {
  switch (s) {
    case SameSite::kLax: return "Lax";
    case SameSite::kStrict: return "Strict";
    case SameSite::kNone: return "None";
  }
  return "?";
}

const BackendConfig* GatewayConfig::find_backend(std::string_view name) const {
  for (const auto& b : backends)
    if (b.name == name) return &b;
  return nullptr;
}

}  // namespace sag::config
