// The gateway's configuration schema: one reader per section, each filling
// its part of a GatewayConfig from a YAML node and reporting every problem
// into the shared ErrorLog. config_loader.cc calls them in document order;
// cross_checks.h runs what needs the whole document.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>

#include "config/gateway_config.h"
#include "config/schema_context.h"
#include "config/yaml_reader.h"

namespace sag::config {

// listener_schema.cc
void read_listener(SchemaContext& ctx, const YAML::Node& n, size_t index, GatewayConfig& cfg);

// backend_schema.cc
void read_backend(SchemaContext& ctx, const YAML::Node& n, size_t index, GatewayConfig& cfg);

// persistence_schema.cc: the `persistence` of `backend`.
PersistenceConfig read_persistence(SchemaContext& ctx, YamlReader& backend);

// store_schema.cc
void read_affinity_store(SchemaContext& ctx, YamlReader& root, AffinityStoreConfig& s);

// global_schema.cc: the top-level sections other than listeners, backends
// and affinity_store.
void read_workers(SchemaContext& ctx, YamlReader& root, GatewayConfig& cfg);
void read_pid_file(SchemaContext& ctx, YamlReader& root, GatewayConfig& cfg);
void read_forwarded(SchemaContext& ctx, YamlReader& root, ForwardedConfig& f);
void read_limits(SchemaContext& ctx, YamlReader& root, LimitsConfig& l);
void read_timeouts(SchemaContext& ctx, YamlReader& root, TimeoutsConfig& t);
void read_admin(SchemaContext& ctx, YamlReader& root, std::optional<AdminConfig>& admin);
void read_access_log(SchemaContext& ctx, YamlReader& root, AccessLogConfig& a);

}  // namespace sag::config
