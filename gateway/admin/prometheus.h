// GET /metrics: the Prometheus text exposition format (version 0.0.4).
// Counters count requests (one request, one increment); answers the
// gateway gave itself carry server="-".
#pragma once

#include <string>
#include <string_view>

#include "affinity/model/backend.h"
#include "config/gateway_config.h"
#include "session/gateway_stats.h"

namespace sag::gateway::admin {

std::string prometheus_metrics(const config::GatewayConfig& config,
                               const affinity::BackendSet& backends,
                               const session::GatewayStats& stats);

// Appends s escaped for a Prometheus label value (\\, \", \n).
void append_label_value(std::string& out, std::string_view s);

}  // namespace sag::gateway::admin
