// The gateway process: builds the shared state from a validated config
// (backends, TLS contexts, access log), binds every listener once per
// worker, runs the workers, and handles signals (SIGTERM/SIGINT graceful
// stop within timeouts.shutdown).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/gateway_config.h"

namespace sag::gateway {

class Gateway {
 public:
  // Checks what the loader can't: certificates and keys (TLS contexts) and
  // the access log path. Empty when all is well.
  static std::vector<std::string> check_runtime(const config::GatewayConfig& config);

  // Runs until stopped by a signal; returns the process exit code.
  static int run(std::shared_ptr<const config::GatewayConfig> config);
};

}  // namespace sag::gateway
