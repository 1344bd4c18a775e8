// The gateway process: builds the shared state from a validated config
// (backends, TLS contexts, access log), binds every listener once per
// worker, runs the workers, and handles signals (SIGTERM/SIGINT graceful
// stop within timeouts.shutdown).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "gateway/reloader.h"

namespace sag::gateway {

class Gateway {
 public:
  // Checks what the loader can't: certificates and keys (TLS contexts) and
  // the access log path. Empty when all is well.
  static std::vector<std::string> check_runtime(const config::GatewayConfig& config);

  // Runs until stopped by a signal; returns the process exit code. `argv`
  // (argv[0] included) is what a binary upgrade (SIGUSR2) runs the new
  // process with; `loader` reads the config file again on SIGHUP (none:
  // SIGHUP reloads nothing, and says so).
  static int run(std::shared_ptr<const config::GatewayConfig> config,
                 std::vector<std::string> argv = {}, Reloader::Loader loader = {});
};

}  // namespace sag::gateway
