// GET /: the statistics page, HTML that refreshes itself every 5 s; one
// table per backend, one row per server, and a row for the gateway's own
// answers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "affinity/model/backend.h"
#include "config/gateway_config.h"
#include "gateway/admin/server_view.h"
#include "session/gateway_stats.h"

namespace sag::gateway::admin {

// `listener_ids`: as for prometheus_metrics.
std::string render_stats_page(const config::GatewayConfig& config,
                              const affinity::BackendSet& backends,
                              const session::GatewayStats& stats, const LastCheck& last_check,
                              std::span<const uint32_t> listener_ids = {});

// Appends s escaped for HTML text and attribute values (& < > " ').
void append_html(std::string& out, std::string_view s);

}  // namespace sag::gateway::admin
