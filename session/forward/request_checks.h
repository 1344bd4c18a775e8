// The checks a request passes before any server is chosen, and the small
// request facts the later steps ask for. Pure functions over the head, so
// each is unit-tested alone (tests/session/forward/request_checks_test.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/verb.hpp>

#include "session/http_message.h"
#include "session/gateway_error.h"

namespace sag::session {

// Why a request is refused before routing: the answer and the header lines
// ("Name: value\r\n") it carries.
struct RequestRefusal {
  GatewayError error;
  std::string_view extra_headers;
};

// CONNECT (405 with Allow), a target neither origin-form nor "*" for
// OPTIONS, and a Host that isn't an RFC 3986 authority are refused.
// Precondition: the protocol session validated framing and set Host.
std::optional<RequestRefusal> check_request(const RequestHeader& req);

// Host characters only (reg-name, IP literal, port): the value is copied into
// X-Forwarded-Host, Forwarded and redirect Locations.
bool valid_authority(std::string_view host);

// Methods a server may see twice without harm (RFC 9110 §9.2.2): the only
// ones replayed on another server after bytes may have reached the first.
bool is_idempotent(boost::beast::http::verb v);

// A WebSocket handshake (RFC 6455 §4.1): the one upgrade that is tunnelled.
bool is_websocket_upgrade(const RequestHeader& req);

// The Location line ("Location: https://host[:port]/path\r\n") of an
// HTTP→HTTPS redirect into `out`; `host` as the client sent it (its port
// replaced by `https_port`). False when there is no host to redirect to.
bool redirect_location(std::string_view host, uint16_t https_port, std::string_view path,
                       std::string& out);

}  // namespace sag::session
