// The response on its way to the client: the head rewritten (hop-by-hop
// fields, framing a 1xx/204 can't have) and the body streamed from the
// server connection through one relay buffer.
//
// Thread: the connection's worker.
#pragma once

#include <cstddef>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>

#include "session/client_port.h"
#include "session/forward/server_connection.h"

namespace sag::session {

// Strips what concerns only the server's connection from `res` and returns
// how the server framed the body, for a protocol that frames it again. No
// body follows a 1xx or 204 whatever the server wrote, so no length either
// (RFC 9110 §8.6); a 304's Content-Length describes the representation and
// is kept. Call once, before any other rewriting of the head.
ResponseFraming prepare_response_head(ServerConnection::Response& res,
                                      boost::beast::http::verb method, bool declared_length);

enum class RelayEnd : uint8_t {
  kComplete,     // the whole response reached the client
  kClientGone,   // the client left or stopped reading
  kServerBroke,  // the server failed mid-body (up.failure() says how)
};
struct RelayResult {
  RelayEnd end = RelayEnd::kComplete;
  bool head_sent = false;  // false: the client has seen nothing yet
};

// Sends `up`'s response to the client: the head goes with the first bytes
// at hand (all of a prefetched body, which is in buf), otherwise alone so a
// slow body doesn't hold it; then the body through buf[0, cap).
boost::asio::awaitable<RelayResult> relay_response(ServerConnection& up, ClientPort& port,
                                                   const ResponseFraming& framing, char* buf,
                                                   size_t cap);

}  // namespace sag::session
