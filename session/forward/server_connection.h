// One request's connection to a server, whatever protocol it speaks there:
// the Forwarder opens it, sends the request, reads the response through it
// and releases it, and never touches a socket itself. An implementation owns
// its socket and closes it in one place (release/close or its destructor),
// so no path of the request can leak or double-close a connection.
//
// Thread: the connection's worker; used by one exchange at a time, one
// member at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <tuple>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_static_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/system/error_code.hpp>

#include "session/http_message.h"

namespace sag::session {

class ClientPort;

class ServerConnection {
 public:
  using Request = session::Request;
  using Response = session::Response;
  template <class T>
  using awaitable = boost::asio::awaitable<T>;

  enum class Status : uint8_t {
    kOk,
    kServerFailed,  // see failure()
    kClientFailed,  // the client failed (answered when it could be) or left
  };
  // Why the last step failed: for the server warning and the retry policy.
  struct Failure {
    const char* what = "";  // "no response", "response cut short", ...
    boost::system::error_code ec;
    bool timed_out = false;  // timeouts.server ran out waiting for the response
    bool invalid_http = false;  // the server sent something that isn't HTTP
  };

  virtual ~ServerConnection() = default;

  // Takes an idle pooled connection to server `index` of the backend;
  // false when there is none (then connect()). A connection held before is
  // closed. Split from connect() so the common, pooled case costs no
  // coroutine frame.
  virtual bool reuse(uint32_t index) = 0;
  // Connects to server `index` within timeouts.connect.
  virtual awaitable<Status> connect(uint32_t index) = 0;
  // Whether the connection came from the pool.
  virtual bool reused() const = 0;
  // Sends the request, in two steps. send_request_now() does the common
  // case without a coroutine: a request with no body whose head the socket
  // takes whole at once; true with the outcome in `st`. When it says false,
  // send_request() (with the same arguments) sends what is left: the rest
  // of a head the first step sent only part of, or the head and the body
  // streamed from `port` through buf[0, cap) (a head whose body bytes are
  // at hand leaves with them).
  virtual bool send_request_now(Request& req, ClientPort& port, char* buf, size_t cap,
                                Status& st) = 0;
  virtual awaitable<Status> send_request(Request& req, ClientPort& port, char* buf,
                                         size_t cap) = 0;
  // Reads the final response head (interim 1xx skipped, 101 kept; HEAD
  // responses parsed without a body) in steps that leave the waiting to the
  // caller's own frame, since every exchange waits here and hundreds of
  // HTTP/2 streams may: read_response_head_now() reads and parses what the
  // socket has and says true once that decided it (`st`: kOk, or the
  // failure); false when the head is incomplete and the socket empty. Then
  // co_await wait_response() and call again with the error it gave. The
  // first call of an attempt starts timeouts.server.
  virtual bool read_response_head_now(boost::beast::http::verb method,
                                      const boost::system::error_code& waited, Status& st) = 0;
  virtual awaitable<std::tuple<boost::system::error_code>> wait_response() = 0;
  // Whether the body is still to come and its declared length fits `cap`.
  virtual bool prefetchable(size_t cap) const = 0;
  // For a prefetchable() body, so a server that dies mid-body is still a
  // failure the client need not see, in two steps: prefetch_buffered()
  // moves the body bytes that came with the head into buf[0, cap) without
  // waiting, and says whether that was all of it (the usual case: no
  // coroutine for the rest); prefetch_body() then reads the rest after
  // them. prefetched() counts the bytes in buf.
  virtual bool prefetch_buffered(char* buf, size_t cap) = 0;
  virtual awaitable<Status> prefetch_body(char* buf, size_t cap) = 0;
  virtual size_t prefetched() const = 0;
  // Reads the next body bytes into buf[0, cap) (`got` may be 0 when only
  // chunk framing arrived).
  virtual awaitable<Status> read_body(char* buf, size_t cap, size_t& got) = 0;

  // The response head (valid once read_response_head_now() gave kOk).
  virtual Response& response() = 0;
  virtual bool response_done() const = 0;
  // Whether any byte of a response arrived (a head, or part of one).
  virtual bool response_started() const = 0;
  // Bytes read past what the parser consumed.
  virtual bool has_unread() const = 0;
  // Whether the server declared the body's length (Content-Length).
  virtual bool has_declared_length() const = 0;
  virtual const Failure& failure() const = 0;

  // The exchange is over: a connection whose response ended cleanly at a
  // message boundary goes back to the pool when `reusable`; any other
  // is closed. close(): closed, whatever state it is in.
  virtual void release(bool reusable) = 0;
  virtual void close() = 0;
  // For a tunnel after 101: the socket and the bytes read but not parsed.
  virtual boost::asio::ip::tcp::socket& socket() = 0;
  virtual boost::beast::flat_static_buffer_base& input() = 0;
};

}  // namespace sag::session
