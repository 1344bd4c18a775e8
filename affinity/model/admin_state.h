// A server's admin state and weight bounds, as the admin API, the shared
// admin state in Redis and the status page spell them. The one place these
// spellings and kMaxWeight are defined for affinity and above.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "config/gateway_config.h"

namespace sag::affinity {

enum class AdminState : uint8_t { kReady, kDrain, kMaint };

// "ready", "drain", "maint". parse_admin_state: nullopt for anything else.
const char* to_string(AdminState s);
std::optional<AdminState> parse_admin_state(std::string_view s);

// The largest weight an operator may set (config, admin API; a larger one
// in the shared admin state is not ours and is ignored). Defined in config
// (the config loader checks it and config sits below affinity); this is
// that same constant, not a copy.
using config::kMaxWeight;

}  // namespace sag::affinity
