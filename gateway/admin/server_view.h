// What the admin bodies (API, stats page) show of a server, computed once.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "affinity/model/server.h"

namespace sag::gateway::admin {

// The last active health check result of a server for display, e.g.
// "200 in 3ms". Called on the admin thread: must be thread-safe.
using LastCheck = std::function<std::string(const affinity::Server&)>;

// last_check(s), or "-" without a hook or a result.
std::string last_check_text(const LastCheck& last_check, const affinity::Server& s);

// Responses by class: [0] = 1xx ... [4] = 5xx.
std::array<uint64_t, 5> response_classes(const affinity::Server& s);

void append_u64(std::string& out, uint64_t v);
void append_i64(std::string& out, int64_t v);

}  // namespace sag::gateway::admin
