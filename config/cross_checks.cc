#include "config/cross_checks.h"

#include <algorithm>
#include <utility>

#include "config/yaml_reader.h"

namespace sag::config {

namespace {

bool is_unspecified(const IpAddress& a) {
  return std::all_of(a.bytes.begin(), a.bytes.begin() + (a.v6 ? 16 : 4), [](uint8_t b) { return b == 0; });
}

}  // namespace

void UniqueNames::add(ErrorLog& log, const std::string& name, Pos at, std::string_view kind,
                      std::string_view where) {
  for (const Seen& s : seen_) {
    if (s.name != name) continue;
    std::string message = "duplicate ";
    message.append(kind).append(" name ").append(quote(name));
    if (!where.empty()) message.append(" ").append(where);
    message.append(" (first at line ").append(std::to_string(s.at.line)).append(")");
    log.error(at, std::move(message));
    return;
  }
  seen_.push_back({name, at});
}

std::string UniqueNames::list() const {
  std::string s;
  for (const Seen& n : seen_) s += (s.empty() ? "" : ", ") + n.name;
  return s;
}

void CrossChecks::bind(const Endpoint& ep, const std::string& owner, Pos at) {
  if (ep.port == 0) return;  // every port-0 bind gets a port of its own
  // With SO_REUSEPORT an overlapping second bind succeeds and silently
  // shares the port's traffic, so overlaps are refused here, wildcards
  // included.
  for (const BindUse& b : binds_) {
    if (b.endpoint.port != ep.port || b.endpoint.ip.v6 != ep.ip.v6) continue;
    if (b.endpoint.ip == ep.ip || is_unspecified(b.endpoint.ip) || is_unspecified(ep.ip)) {
      log_.error(at, "'bind': " + ep.to_string() + " is already used by " + b.owner + " (" +
                         b.endpoint.to_string() + " at line " + std::to_string(b.at.line) + ")");
      return;
    }
  }
  binds_.push_back({ep, owner, at});
}

void CrossChecks::finish(const GatewayConfig& cfg) {
  const std::string defined = backends_.list();
  for (const BackendRef& ref : backend_refs_) {
    if (const BackendConfig* b = cfg.find_backend(ref.name)) {
      if (b->mode != ref.mode)
        log_.error(ref.at, "'backend': " + quote(ref.name) + " is a" +
                               (b->mode == ProxyMode::kTcp ? " tcp" : "n http") + " backend; a" +
                               (ref.mode == ProxyMode::kTcp ? " tcp listener needs a tcp backend"
                                                            : "n http listener needs an http backend"));
      continue;
    }
    log_.error(ref.at, "'backend': no backend named " + quote(ref.name) +
                           (defined.empty() ? std::string() : " (defined: " + defined + ")"));
  }
}

}  // namespace sag::config
