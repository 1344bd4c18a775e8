// The body of PUT /api/backends/{b}/servers/{s}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "affinity/model/admin_state.h"

namespace sag::gateway::admin {

// {"state": "ready"|"drain"|"maint", "weight": 0..affinity::kMaxWeight},
// both optional.
struct ServerPatch {
  std::optional<affinity::AdminState> state;
  std::optional<uint32_t> weight;
};

// nullopt with `error` set (a short sentence for the client) on anything
// but a ServerPatch: not a JSON object, a duplicate or unknown key, a wrong
// type, a bad state, a weight out of range or not an integer, trailing
// bytes.
std::optional<ServerPatch> parse_server_patch(std::string_view body, std::string& error);

}  // namespace sag::gateway::admin
