#include "gateway/admin/admin_api.h"

#include <chrono>
#include <cstdio>

#include "config/base/json_escape.h"
#include "gateway/admin/server_patch.h"
#include "gateway/log.h"

namespace sag::gateway::admin {
namespace {

AdminResponse json_body(std::string body) {
  AdminResponse r;
  r.content_type = kJsonType;
  r.body = std::move(body);
  return r;
}

AdminResponse unknown_server(std::string_view backend, std::string_view server) {
  return error_response(404, "unknown server '" + std::string(server) + "' in backend '" +
                                 std::string(backend) + "'");
}

}  // namespace

AdminResponse error_response(unsigned status, std::string_view message) {
  AdminResponse r;
  r.status = status;
  r.content_type = kJsonType;
  r.body = "{\"error\": ";
  base::append_json_string(r.body, message);
  r.body += "}\n";
  return r;
}

AdminApi::AdminApi(affinity::BackendSet& backends, const session::GatewayStats& stats,
                   LastCheck last_check, OnChange on_change)
    : backends_(backends),
      stats_(stats),
      last_check_(std::move(last_check)),
      on_change_(std::move(on_change)) {}

size_t AdminApi::find_backend(std::string_view name) const {
  const auto all = backends_.backends();
  for (size_t bi = 0; bi < all.size(); ++bi)
    if (all[bi]->name() == name) return bi;
  return std::string_view::npos;
}

AdminResponse AdminApi::get_server(std::string_view backend_name,
                                   std::string_view server_name) const {
  const size_t bi = find_backend(backend_name);
  if (bi == std::string_view::npos)
    return error_response(404, "unknown backend '" + std::string(backend_name) + "'");
  const affinity::Server* server = backends_.backends()[bi]->find_server(server_name);
  if (!server) return unknown_server(backend_name, server_name);
  std::string body;
  append_server_json(body, backends_.backends()[bi]->id(), *server);
  body += '\n';
  return json_body(std::move(body));
}

AdminResponse AdminApi::put_server(std::string_view backend_name, std::string_view server_name,
                                   std::string_view body) const {
  const size_t bi = find_backend(backend_name);
  if (bi == std::string_view::npos)
    return error_response(404, "unknown backend '" + std::string(backend_name) + "'");
  const affinity::Backend& backend = *backends_.backends()[bi];
  affinity::Server* server = backend.find_server(server_name);
  if (!server) return unknown_server(backend_name, server_name);
  std::string error;
  const auto patch = parse_server_patch(body, error);
  if (!patch) return error_response(400, error);

  if (patch->state || patch->weight) {
    // The values this PUT leaves, taken before it applies them: what the
    // hook publishes, whatever else changes the server meanwhile.
    const affinity::AdminState state = patch->state.value_or(server->admin_state());
    const uint32_t weight = patch->weight.value_or(server->weight());
    const std::string change = server->apply_admin(state, weight, std::chrono::steady_clock::now());
    log_info("admin: " + backend.name() + "/" + server->name() + (change.empty() ? " unchanged" : change));
    if (on_change_) on_change_(backend, *server, state, weight);
  }
  std::string out;
  append_server_json(out, backend.id(), *server);
  out += '\n';
  return json_body(std::move(out));
}

void AdminApi::append_server_json(std::string& out, size_t bi, const affinity::Server& s) const {
  const auto classes = response_classes(s);
  out += "{\"name\": ";
  base::append_json_string(out, s.name());
  out += ", \"address\": ";
  base::append_json_string(out, s.endpoint().to_string());
  out += ", \"state\": \"";
  out += affinity::to_string(s.admin_state());
  out += "\", \"health\": \"";
  out += s.up() ? "up" : "down";
  out += "\", \"weight\": ";
  append_u64(out, s.weight());
  out += ", \"active\": ";
  append_u64(out, s.active_requests());
  out += ", \"requests\": ";
  append_u64(out, s.total_requests());
  // Requests this server got because of persistence (cookie, learn or
  // source hit): the gateway keeps no per-session table for cookie pins.
  out += ", \"pinned\": ";
  append_u64(out, stats_.persistent_requests(bi, s.index()));
  out += ", \"last_check\": ";
  base::append_json_string(out, last_check_text(last_check_, s));
  out += ", \"backup\": ";
  out += s.backup() ? "true" : "false";
  out += ", \"ejected\": ";
  out += s.ejected() ? "true" : "false";
  out += ", \"responses\": {";
  for (size_t k = 0; k < classes.size(); ++k) {
    if (k) out += ", ";
    out += '"';
    out += static_cast<char>('1' + k);
    out += "xx\": ";
    append_u64(out, classes[k]);
  }
  out += "}, \"response_time_ms\": ";
  if (s.has_response_time()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f",
                  static_cast<double>(s.response_time_ewma().count()) / 1000.0);
    out += buf;
  } else {
    out += "null";
  }
  out += '}';
}

std::string AdminApi::backends_json() const {
  std::string out = "{\"backends\": [";
  const auto all = backends_.backends();
  for (size_t bi = 0; bi < all.size(); ++bi) {
    const affinity::Backend& b = *all[bi];
    if (bi) out += ", ";
    out += "{\"name\": ";
    base::append_json_string(out, b.name());
    out += ", \"balance\": ";
    base::append_json_string(out, config::to_string(b.config().balance));
    out += ", \"servers\": [";
    const auto servers = b.servers();
    for (size_t si = 0; si < servers.size(); ++si) {
      if (si) out += ", ";
      append_server_json(out, b.id(), *servers[si]);
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

}  // namespace sag::gateway::admin
