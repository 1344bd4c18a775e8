// For config tests: a load's errors as the lines the gateway prints
// (FILE:LINE:COL: message), so expectations read like the output.
#pragma once

#include <string>
#include <vector>

#include "config/config_loader.h"

namespace sag::config::testing {

inline std::vector<std::string> errors_of(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  return out;
}

}  // namespace sag::config::testing
