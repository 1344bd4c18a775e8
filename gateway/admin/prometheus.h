// GET /metrics: the Prometheus text exposition format (version 0.0.4).
// Counters count requests (one request, one increment); answers the
// gateway gave itself carry server="-".
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "affinity/model/backend.h"
#include "config/gateway_config.h"
#include "session/gateway_stats.h"

namespace sag::gateway::admin {

// `listener_ids`: the stats id of each of config.listeners (empty: their
// positions).
std::string prometheus_metrics(const config::GatewayConfig& config,
                               const affinity::BackendSet& backends,
                               const session::GatewayStats& stats,
                               std::span<const uint32_t> listener_ids = {});

// Appends s escaped for a Prometheus label value (\\, \", \n).
void append_label_value(std::string& out, std::string_view s);

}  // namespace sag::gateway::admin
