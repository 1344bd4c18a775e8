// How an HTTP/1.1 response head is framed for the client it goes to, once
// the Forwarder removed the server's own framing and connection fields.
#pragma once

#include "session/client_port.h"

namespace sag::session {

// Sets the head's version, Transfer-Encoding (chunked when the body's end
// is not known from a length, never to an HTTP/1.0 client) and Connection.
// `keep_alive` comes in as the client connection's wish and goes out as
// what the head says: an HTTP/1.0 body without a length ends with the
// connection. Returns whether the body goes chunked. Idempotent.
bool frame_for_client(Response& res, const ResponseFraming& framing, bool http10, bool& keep_alive);

}  // namespace sag::session
