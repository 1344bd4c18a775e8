// Header rewriting between client and server (docs/behaviour.md#request-path): hop-by-hop removal
// in both directions (RFC 9110 §7.6.1) and the X-Forwarded-* / Forwarded
// headers toward the server. Pure functions on Beast's field container, so
// HTTP/1.1 and HTTP/2 sessions share them and unit tests drive them directly.
#pragma once

#include <cstdint>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "session/http_message.h"
#include "config/gateway_config.h"

namespace sag::session {

// Removes Connection, every field it names (except framing fields and Host,
// which must never disappear through it), Keep-Alive, Proxy-Connection, TE,
// Trailer, Transfer-Encoding, Upgrade, and Proxy-Authorization (credentials
// meant for this hop). Callers re-add framing themselves.
void strip_hop_by_hop(Fields& fields);

struct ClientAddress {
  config::IpAddress ip;
  std::string_view ip_text;  // as written into headers, no brackets
  uint16_t port = 0;
  bool tls = false;
  uint16_t listener_port = 0;
};

bool is_trusted_proxy(const config::ForwardedConfig& config, const config::IpAddress& ip);

// The address a request comes from for persistence and hashing: the peer,
// or, when the peer is a trusted proxy, the right-most X-Forwarded-For entry
// that is not itself a trusted proxy. Call before apply_forwarded().
config::IpAddress original_client(const Fields& fields,
                                  const config::ForwardedConfig& config,
                                  const ClientAddress& client);

// Drops a client's own X-Forwarded-* / Forwarded unless it is a trusted
// proxy, then appends or sets X-Forwarded-For, -Proto, -Host, -Port and
// Forwarded as configured. `host` is the request's Host (or :authority).
void apply_forwarded(Fields& fields, const config::ForwardedConfig& config,
                     const ClientAddress& client, std::string_view host);

}  // namespace sag::session
