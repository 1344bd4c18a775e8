#include "config/config_error.h"

#include <algorithm>
#include <utility>

namespace sag::config {

std::string ConfigError::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::vector<ConfigError> ErrorLog::take_sorted() {
  auto by_position = [](const ConfigError& a, const ConfigError& b) {
    return std::pair{a.line, a.column} < std::pair{b.line, b.column};
  };
  std::stable_sort(errors_.begin(), errors_.end(), by_position);
  return std::exchange(errors_, {});
}

}  // namespace sag::config
