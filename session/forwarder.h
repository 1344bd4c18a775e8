// Carries one request from any client protocol to a server of its backend
// and the response back (SPEC §3, §4): routing, the persistence decision,
// server choice with retries and redispatch, the pooled server connection,
// header rewriting both ways, persistence cookies and learn entries,
// passive failure accounting, and the exchange's log line.
//
// Thread: the connection's worker; one Forwarder per in-flight exchange
// (HTTP/1.1: per connection, reused; HTTP/2: per stream).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include "session/client_port.h"
#include "session/exchange.h"

namespace sag::affinity {
class Server;
class StickyCookie;
}
namespace sag::config {
struct IpAddress;
}

namespace sag::session {

struct BackendRuntime;
struct ClientConnection;
class Deadline;

// Requests without persistence on one client connection follow the server
// the first of them was balanced to (SPEC §4).
// They also get the same cookie: issued once with the same dates, and issued
// anew only once those would need refreshing.
struct ConnectionPin {
  affinity::Server* server = nullptr;
  int backend = -1;
  std::optional<int64_t> issued;  // Unix seconds the pinned cookie was issued at
};

class Forwarder {
 public:
  using Request = boost::beast::http::request<boost::beast::http::buffer_body>;

  // `deadline` bounds the server side of the exchange (its watch() must be
  // running); all references outlive the Forwarder.
  Forwarder(ClientConnection& conn, ConnectionPin& pin, Deadline& deadline);

  // Forwards `req` (head validated for framing; target in origin form or
  // "*"; Host set) and relays the response through `port`. `x` has the
  // request's start, head time, method and path. Returns true when the
  // exchange completed cleanly and the client connection may carry more;
  // the exchange is logged either way.
  boost::asio::awaitable<bool> forward(Request& req, ClientPort& port, Exchange& x);

 private:
  enum class SendResult { kOk, kServerFailed, kClientFailed };

  using Duration = std::chrono::milliseconds;
  // Writes the request head and streams its body from the client.
  boost::asio::awaitable<SendResult> send_request(boost::asio::ip::tcp::socket& up, Request& req,
                                                  ClientPort& port, char* buf,
                                                  Duration server_timeout);
  boost::asio::awaitable<void> redirect(std::string_view host, uint16_t port, ClientPort& cp,
                                        Exchange& x);
  // Before a 502/504 that `server` caused: the log line names it, and a
  // warning (rate-limited per worker) says what it did.
  void blame(Exchange& x, const affinity::Server& server, unsigned status, std::string_view what,
             const boost::system::error_code& ec);
  void join_cookies(const Request& req);
  std::optional<std::string_view> take_sticky_cookie(Request& req,
                                                     const affinity::StickyCookie& sticky);
  uint64_t request_hash(const BackendRuntime& br, const Request& req,
                        const config::IpAddress& origin) const;
  void process_set_cookies(boost::beast::http::response_header<>& res, BackendRuntime& br,
                           const affinity::Server& server, const affinity::StickyCookie* sticky,
                           std::optional<int64_t> created);

  ClientConnection& conn_;
  ConnectionPin& pin_;
  Deadline& deadline_;
  // Reused across requests so steady-state requests don't allocate for them.
  std::string set_cookie_, cookie_joined_, cookie_rest_, cookie_value_, learn_value_;
  std::vector<std::string> set_cookies_;
};

}  // namespace sag::session
