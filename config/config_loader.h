// Loads and validates a GatewayConfig from YAML (docs/configuration.md).
//
// Every problem found is collected (never just the first), each with the file
// name as given, and the 1-based line and column of the offending node, so
// `gateway --check` can print them all as FILE:LINE:COL: message.
// Relative paths inside the file (certificates, secret_file, password_file)
// are resolved against the directory of the config file.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.h"  // ConfigError
#include "config/gateway_config.h"
#include "config/units.h"  // parse_duration, parse_size

namespace sag::config {

struct LoadResult {
  std::shared_ptr<const GatewayConfig> config;  // null when errors is not empty
  std::vector<ConfigError> errors;
  // Accepted keys whose feature this build does not act on yet; logged at start.
  std::vector<ConfigError> warnings;
};

class ConfigLoader {
 public:
  // Reads `path`; errors carry `path` exactly as given.
  static LoadResult load_file(const std::string& path);
  // Parses `yaml`; `name` is used in error messages, `base_dir` resolves
  // relative paths. Used by tests and the fuzzer.
  static LoadResult load_string(std::string_view yaml, const std::string& name,
                                const std::string& base_dir);
};

}  // namespace sag::config
