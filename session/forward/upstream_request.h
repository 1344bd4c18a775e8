// The request as the server will see it: hop-by-hop fields dropped (a
// chunked body stays chunked: the protocol session decided the framing),
// Expect answered by us, a WebSocket handshake's upgrade fields restored,
// X-Forwarded-* / Forwarded applied, HTTP/1.1. docs/behaviour.md#headers.
#pragma once

#include <string_view>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include "session/http_message.h"

namespace sag::config {
struct ForwardedConfig;
}

namespace sag::session {

struct ClientAddress;

// `host`: the request's Host as the client sent it (a view into `req` is
// fine: Host is kept). Call once, after the persistence inputs were read.
void prepare_upstream_request(Request& req,
                              bool websocket, const config::ForwardedConfig& forwarded,
                              const ClientAddress& client, std::string_view host);

}  // namespace sag::session
