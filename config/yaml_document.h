// Parsing the configuration text into one YAML tree, safely.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

#include "config/config_error.h"

namespace sag::config {

// The tree of `text`, which must hold exactly one YAML document (an empty
// text gives a null node). A syntax error is reported with its position and
// gives nullopt; a second document is reported and the first one returned,
// so that its own errors are found in the same run. Never throws.
std::optional<YAML::Node> parse_single_document(const std::string& text, ErrorLog& log);

}  // namespace sag::config
