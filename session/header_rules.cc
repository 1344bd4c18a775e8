#include "session/header_rules.h"

#include <charconv>
#include <cstdint>
#include <string>

#include "config/base/token_list.h"
#include "session/http_chars.h"

namespace sag::session {
namespace http = boost::beast::http;

namespace {

using base::trim_blanks;

// Whether `s` is `lower` (a lowercase literal) in any case.
bool is(std::string_view s, std::string_view lower) {
  return s.size() == lower.size() && equals_lowercase(s, lower);
}

bool protected_from_connection(std::string_view name) {
  return is(name, "content-length") || is(name, "host") || is(name, "transfer-encoding");
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

enum class Forwarding : uint8_t { kNone, kFor, kProto, kHost, kPort, kForwarded };

constexpr size_t kShortestXForwarded = 15;  // X-Forwarded-For
constexpr size_t kLongestXForwarded = 17;   // X-Forwarded-Proto

// Which forwarding field `f` is: Beast knows Forwarded; the X-Forwarded-*
// names are compared only for unknown fields of the right length.
Forwarding forwarding_kind(const Fields::value_type& f) {
  if (f.name() == http::field::forwarded) return Forwarding::kForwarded;
  if (f.name() != http::field::unknown) return Forwarding::kNone;
  const std::string_view n = f.name_string();
  if (n.size() < kShortestXForwarded || n.size() > kLongestXForwarded ||
      !is(n.substr(0, 12), "x-forwarded-"))
    return Forwarding::kNone;
  const std::string_view rest = n.substr(12);
  if (is(rest, "for")) return Forwarding::kFor;
  if (is(rest, "proto")) return Forwarding::kProto;
  if (is(rest, "host")) return Forwarding::kHost;
  if (is(rest, "port")) return Forwarding::kPort;
  return Forwarding::kNone;
}

struct Seen {
  bool xff = false, proto = false, host = false, port = false;
  void mark(Forwarding k) {
    if (k == Forwarding::kFor) xff = true;
    if (k == Forwarding::kProto) proto = true;
    if (k == Forwarding::kHost) host = true;
    if (k == Forwarding::kPort) port = true;
  }
};

}  // namespace

void strip_hop_by_hop(Fields& fields) {
  // Most requests carry none of these: no pass at all then.
  using F = http::field;
  bool any = false;
  for (F f : {F::connection, F::keep_alive, F::proxy_connection, F::te, F::trailer,
              F::transfer_encoding, F::upgrade, F::proxy_authorization})
    any = any || fields.may_have(f);
  if (!any) return;
  // One pass over the fields by their enum (a lookup per name would cost a
  // tree search with case-insensitive compares each, on every message).
  // Erasing only marks a field dead: every other field's name and value stay
  // where they are and iterators stay valid (header_fields.h), so the
  // Connection values are read in place while the fields they name go.
  for (auto it = fields.begin(); it != fields.end();) {
    switch (it->name()) {
      case http::field::connection: {
        std::string_view rest = it->value();
        // keep-alive names a field this pass drops anyway: the usual
        // "Connection: keep-alive" costs no search, nor a walk of the list.
        if (is(rest, "keep-alive")) rest = {};
        for (std::string_view token; base::next_token(rest, token);) {
          if (is(token, "keep-alive") || protected_from_connection(token)) continue;
          fields.erase(token);
        }
        it = fields.erase(it);
        break;
      }
      case http::field::keep_alive:
      case http::field::proxy_connection:
      case http::field::te:
      case http::field::trailer:
      case http::field::transfer_encoding:
      case http::field::upgrade:
      case http::field::proxy_authorization:
        it = fields.erase(it);
        break;
      default:
        ++it;
    }
  }
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
  // One pass over the fields: what a client that is not a trusted proxy
  // sent goes; what a trusted one sent is noted (its view of the original
  // protocol, host and port wins). None of them (the usual case): no pass.
  Seen seen;
  bool any = fields.may_have(http::field::forwarded);
  for (size_t n = kShortestXForwarded; n <= kLongestXForwarded; ++n)
    any = any || fields.may_have_unknown(n);
  for (auto it = fields.begin(); any && it != fields.end();) {
    const Forwarding kind = forwarding_kind(*it);
    if (kind == Forwarding::kNone) {
      ++it;
    } else if (!trusted) {
      it = fields.erase(it);
    } else {
      seen.mark(kind);
      ++it;
    }
  }
  const std::string_view proto = client.tls ? "https" : "http";
  if (config.x_forwarded_for) {
    if (seen.xff) {
      std::string xff = joined(fields, std::string_view("X-Forwarded-For"));
      if (!xff.empty()) xff += ", ";
      xff += client.ip_text;
      fields.set("X-Forwarded-For", xff);
    } else {
      fields.insert(http::field::unknown, "X-Forwarded-For", client.ip_text);
    }
  }
  if (config.x_forwarded_proto) {
    if (!seen.proto) fields.insert(http::field::unknown, "X-Forwarded-Proto", proto);
    if (!seen.port) {
      char port[8];
      const auto r = std::to_chars(port, port + sizeof port, client.listener_port);
      fields.insert(http::field::unknown, "X-Forwarded-Port",
                    std::string_view(port, static_cast<size_t>(r.ptr - port)));
    }
  }
  if (config.x_forwarded_host && !host.empty() && !seen.host)
    fields.insert(http::field::unknown, "X-Forwarded-Host", host);
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
