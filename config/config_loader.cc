// YAML → GatewayConfig (docs/configuration.md): the order of the walk.
//
// The document is parsed once (yaml_document.h), then walked section by
// section (config_schema.h), each YAML map through a YamlReader that reports
// unknown keys. Every problem goes into one ErrorLog with the position of the
// node it concerns; nothing stops the walk, so one `gateway --check` run shows
// all of them. Checks that need the whole document (backend references, bind
// conflicts) run at the end, with positions remembered while walking
// (cross_checks.h).
#include "config/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <exception>
#include <filesystem>

#include "config/config_schema.h"
#include "config/small_file.h"
#include "config/yaml_document.h"

namespace sag::config {

namespace {

// `listeners` or `backends`: a list that must hold at least one entry.
template <typename ReadItem>
void read_list(SchemaContext& ctx, YamlReader& r, const char* key, const char* hint, ReadItem read_item) {
  auto items = r.list(key);
  if (!r.has(key))
    r.missing(key, std::string(" (") + hint + ")");
  else if (items && items->empty())
    ctx.error(r.at(key), quote(key) + ": " + hint);
  if (items)
    for (size_t i = 0; i < items->size(); ++i) read_item((*items)[i], i);
}

void read_root(SchemaContext& ctx, const YAML::Node& root, GatewayConfig& cfg) {
  YamlReader r(ctx.log(), root, {1, 1}, "");
  if (!r.ok()) return;
  read_workers(ctx, r, cfg);
  read_pid_file(ctx, r, cfg);
  read_list(ctx, r, "listeners", "at least one listener is required",
            [&](const YAML::Node& n, size_t i) { read_listener(ctx, n, i, cfg); });
  read_list(ctx, r, "backends", "at least one backend is required",
            [&](const YAML::Node& n, size_t i) { read_backend(ctx, n, i, cfg); });
  read_forwarded(ctx, r, cfg.forwarded);
  read_affinity_store(ctx, r, cfg.affinity_store);
  read_limits(ctx, r, cfg.limits);
  read_timeouts(ctx, r, cfg.timeouts);
  read_admin(ctx, r, cfg.admin);
  read_access_log(ctx, r, cfg.access_log);
  ctx.checks().finish(cfg);
}

LoadResult load(std::string_view yaml, const std::string& name, const std::string& base_dir) {
  auto cfg = std::make_shared<GatewayConfig>();
  cfg->source_path = name;
  ErrorLog log(name);
  if (auto root = parse_single_document(std::string(yaml), log)) {
    if (root->IsNull()) {
      log.error({1, 1}, "the configuration is empty: at least one listener and one backend are required");
    } else {
      try {
        SchemaContext ctx(log, base_dir);
        read_root(ctx, *root, *cfg);
      } catch (const std::exception& e) {
        // A bug of ours, not of the file; still no exception leaves the loader.
        log.error({}, std::string("internal error while reading the configuration: ") + e.what());
      }
    }
  }
  LoadResult result;
  result.errors = log.take_sorted();
  if (result.errors.empty()) result.config = std::move(cfg);
  return result;
}

}  // namespace

LoadResult ConfigLoader::load_string(std::string_view yaml, const std::string& name, const std::string& base_dir) {
  try {
    return load(yaml, name, base_dir);
  } catch (...) {  // bad_alloc and the like: still an answer, never an exception
    LoadResult r;
    r.errors.push_back({name, 0, 0, "internal error while loading the configuration"});
    return r;
  }
}

LoadResult ConfigLoader::load_file(const std::string& path) {
  std::string why;
  auto text = read_small_file(path, why, 16 << 20);
  if (!text) {
    LoadResult r;
    r.errors.push_back({path, 0, 0, "cannot read the configuration: " + why});
    return r;
  }
  return load_string(*text, path, std::filesystem::path(path).parent_path().string());
}

}  // namespace sag::config
