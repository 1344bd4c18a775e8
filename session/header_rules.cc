#include "session/header_rules.h"

#include <string>

#include "config/base/token_list.h"

namespace sag::session {
namespace http = boost::beast::http;

namespace {

using base::trim_blanks;

bool protected_from_connection(std::string_view name) {
  return boost::beast::iequals(name, "content-length") || boost::beast::iequals(name, "host") ||
         boost::beast::iequals(name, "transfer-encoding");
}

// Joins every instance of a field with ", " (RFC 9110 §5.3 list semantics).
template <class Name>
std::string joined(const Fields& fields, Name name) {
  std::string out;
  auto [first, last] = fields.equal_range(name);
  for (auto it = first; it != last; ++it) {
    if (!out.empty()) out += ", ";
    out += trim_blanks(it->value());
  }
  return out;
}

}  // namespace

void strip_hop_by_hop(Fields& fields) {
  // Fields named by Connection go first; copy the tokens since erasing
  // invalidates the views.
  std::string listed = joined(fields, http::field::connection);
  std::string_view rest = listed;
  for (std::string_view token; base::next_token(rest, token);)
    if (!protected_from_connection(token)) fields.erase(token);
  for (http::field f : {http::field::connection, http::field::keep_alive,
                        http::field::proxy_connection, http::field::te, http::field::trailer,
                        http::field::transfer_encoding, http::field::upgrade,
                        http::field::proxy_authorization})
    fields.erase(f);
}

bool is_trusted_proxy(const config::ForwardedConfig& config, const config::IpAddress& ip) {
  for (const auto& cidr : config.trusted_proxies)
    if (cidr.contains(ip)) return true;
  return false;
}

config::IpAddress original_client(const Fields& fields, const config::ForwardedConfig& config,
                                  const ClientAddress& client) {
  if (!is_trusted_proxy(config, client.ip)) return client.ip;
  std::string xff = joined(fields, std::string_view("X-Forwarded-For"));
  std::string_view rest = xff;
  while (!rest.empty()) {
    size_t comma = rest.rfind(',');
    std::string_view entry = trim_blanks(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    if (entry.size() > 2 && entry.front() == '[' && entry.back() == ']') entry = entry.substr(1, entry.size() - 2);
    auto ip = config::IpAddress::parse(entry);
    if (!ip) break;  // unparsable: trust nothing further left
    if (!is_trusted_proxy(config, *ip)) return *ip;
  }
  return client.ip;
}

void apply_forwarded(Fields& fields, const config::ForwardedConfig& config,
                     const ClientAddress& client, std::string_view host) {
  const bool trusted = is_trusted_proxy(config, client.ip);
  if (!trusted) {
    for (std::string_view name : {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
                                  "X-Forwarded-Port", "Forwarded"})
      fields.erase(name);
  }
  const std::string_view proto = client.tls ? "https" : "http";
  if (config.x_forwarded_for) {
    std::string xff = joined(fields, std::string_view("X-Forwarded-For"));
    if (!xff.empty()) xff += ", ";
    xff += client.ip_text;
    fields.set("X-Forwarded-For", xff);
  }
  // A trusted proxy's view of the original protocol, host and port wins.
  if (config.x_forwarded_proto) {
    if (fields.find("X-Forwarded-Proto") == fields.end()) fields.set("X-Forwarded-Proto", proto);
    if (fields.find("X-Forwarded-Port") == fields.end())
      fields.set("X-Forwarded-Port", std::to_string(client.listener_port));
  }
  if (config.x_forwarded_host && !host.empty() &&
      fields.find("X-Forwarded-Host") == fields.end())
    fields.set("X-Forwarded-Host", host);
  if (config.forwarded) {
    std::string fwd = joined(fields, http::field::forwarded);
    if (!fwd.empty()) fwd += ", ";
    fwd += "for=";
    if (client.ip.v6) {
      fwd += "\"[";
      fwd += client.ip_text;
      fwd += "]\"";
    } else {
      fwd += client.ip_text;
    }
    fwd += ";proto=";
    fwd += proto;
    if (!host.empty()) {
      fwd += ";host=\"";
      fwd += host;
      fwd += '"';
    }
    fields.set(http::field::forwarded, fwd);
  }
}

}  // namespace sag::session
