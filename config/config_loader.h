// Loads and validates a GatewayConfig from YAML (SPEC.md §2).
//
// Every problem found is collected (never just the first), each with the file
// name as given, and the 1-based line and column of the offending node, so
// `gateway --check` can print them all as FILE:LINE:COL: message.
// Relative paths inside the file (certificates, secret_file, password_file)
// are resolved against the directory of the config file.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/gateway_config.h"

namespace sag::config {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when not tied to a position
  int column = 0;  // 1-based
  std::string message;
  std::string to_string() const;  // "FILE:LINE:COL: message"
};

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

// "250ms", "5s", "30m", "8h", "0" / "0s"; nullopt when malformed.
std::optional<Duration> parse_duration(std::string_view text);
// "16KiB", "1MiB", "1GiB", "512" (bytes); nullopt when malformed.
std::optional<uint64_t> parse_size(std::string_view text);

}  // namespace sag::config
