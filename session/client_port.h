// What the forwarding path needs from the protocol a client speaks: the
// request body, a way to send the response, and the gateway's own answers.
// Http1Session and Http2Session each implement it for one exchange at a
// time (a stream, for HTTP/2), so the Forwarder carries every request the
// same way whichever protocol brought it.
//
// Thread: the connection's worker. The Forwarder calls one member at a time.
#pragma once

#include <cstddef>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_static_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include "session/http_message.h"
#include "session/gateway_error.h"

namespace sag::session {

struct BodyRead {
  bool ok = true;     // false: the client failed (answered if it could be) or left
  size_t size = 0;    // bytes placed in the caller's buffer
  bool last = false;  // the body ends with these bytes
};

// How the server framed its response, for a protocol that must frame it
// again (HTTP/1.1 chunking of a close-delimited body).
struct ResponseFraming {
  bool no_body = false;           // HEAD, 1xx, 204, 304
  bool has_length = false;        // the server sent Content-Length
  bool upstream_chunked = false;  // the server sent chunked
};

class ClientPort {
 public:
  using Response = session::Response;

  virtual ~ClientPort() = default;

  // Whether the request has a body, and whether some of it is already at
  // hand (then it goes to the server in the same write as the head).
  virtual bool has_body() const = 0;
  virtual bool body_buffered() const = 0;
  // Reads request body bytes into buf[0, cap). Waits at most the client
  // timeout; on failure answers the client when it still can (400, 408,
  // 413) and returns ok = false.
  virtual boost::asio::awaitable<BodyRead> read_body(char* buf, size_t cap) = 0;

  // Sends the response head (already rewritten for the client) with its
  // first `n` body bytes; `last`: nothing follows. False: the client is gone.
  // `res` stays valid and unmoved until the exchange ends.
  virtual boost::asio::awaitable<bool> send_head(Response& res, const ResponseFraming& framing,
                                                 const char* data, size_t n, bool last) = 0;
  // The common case of send_head() without a coroutine: a whole response
  // (`last`) that the client's socket takes at once. True with the outcome
  // in `sent`; false when send_head() must run, with the same arguments (it
  // then finishes what this call began). By default there is no such case.
  virtual bool send_head_now(Response& /*res*/, const ResponseFraming& /*framing*/,
                             const char* /*data*/, size_t /*n*/, bool /*last*/, bool& /*sent*/) {
    return false;
  }
  virtual boost::asio::awaitable<bool> send_body(const char* data, size_t n, bool last) = 0;
  // The response can't be completed (the server broke after the head went
  // out): HTTP/1.1 closes the connection, HTTP/2 resets the stream.
  virtual void abort() = 0;

  // The gateway's own answer: info(e)'s status and a short text body
  // naming the reason (`detail` when given, else info(e).text).
  // `extra_headers`: "Name: value\r\n" lines.
  virtual boost::asio::awaitable<void> answer(GatewayError e, std::string_view detail = {},
                                              std::string_view extra_headers = {}) = 0;

  // The client left or reset the request: failures seen from now on are
  // not the server's.
  virtual bool client_gone() const = 0;
  // Whether this protocol can carry an upgraded connection (WebSocket).
  virtual bool can_tunnel() const { return false; }
  // After a 101 to an upgrade request: sends `res`, then relays bytes both
  // ways between the client and `up` (whose unread bytes are in `up_in`)
  // until either side closes or the connection idles past the client
  // timeout. Returns the bytes sent to the client.
  virtual boost::asio::awaitable<uint64_t> tunnel(Response& res,
                                                  boost::asio::ip::tcp::socket& up,
                                                  boost::beast::flat_static_buffer_base& up_in) {
    co_return 0;
  }
};

}  // namespace sag::session
