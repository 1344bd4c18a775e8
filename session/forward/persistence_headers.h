// The persistence side of the headers, both ways: what the request's Cookie
// fields say (our cookie, the learn cookie, a hash_key cookie) and how they
// reach the server, and what the response's Set-Cookie fields teach (learn
// entries, rewrite/prefix values) plus the insert-mode cookie with its
// cache protection. docs/behaviour.md#persistence describes the modes.
//
// Thread: one connection's worker. One PersistenceHeaders per Forwarder:
// its strings are reused across requests so a steady-state request doesn't
// allocate for them; a value it returns stays valid until the next call of
// read_request on the same object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include "session/http_message.h"
#include "config/hash_key.h"

namespace sag::affinity {
class AffinityResolver;
class Clock;
class Server;
class StickyCookie;
}  // namespace sag::affinity
namespace sag::config {
struct IpAddress;
struct PersistenceConfig;
}  // namespace sag::config

namespace sag::session {

class PersistenceHeaders {
 public:
  using Request = session::Request;

  // The persistence values the client sent. The views point into the
  // request's field storage or this object's buffers: valid while both
  // live, until the next read_request.
  struct Inputs {
    std::optional<std::string_view> cookie;  // our sticky cookie's value
    std::optional<std::string_view> learn;   // the learned server cookie's value
  };

  // Reads the request's cookies (every Cookie field joined, as RFC 9113
  // §8.2.3 joins HTTP/2 crumbs) and rewrites them for the server: insert
  // mode takes our cookie out, prefix mode takes "ID~" off the
  // application's cookie, rewrite mode leaves it (the server owns it).
  // `sticky` null: no cookie persistence.
  Inputs read_request(Request& req, const affinity::StickyCookie* sticky,
                      const config::PersistenceConfig& persistence);

  // The request's key for hashing balancers (0 for other algorithms), from
  // the cookies read_request saw. `name`: hash_key's header or cookie name.
  uint64_t request_hash(config::HashSource source, std::string_view name, const Request& req,
                        const config::IpAddress& origin) const;

  // Applies the server's Set-Cookie fields: learn entries recorded (or
  // forgotten when the server clears the cookie) through `resolver`, and
  // rewrite/prefix cookies given our value. `created`: the client's cookie
  // creation date when it pinned this very server, kept so max_life is never
  // extended by the server re-setting its cookie.
  void process_set_cookies(ResponseHeader& res,
                           const config::PersistenceConfig& persistence,
                           affinity::AffinityResolver& resolver, const affinity::Clock& clock,
                           const affinity::Server& server, const affinity::StickyCookie* sticky,
                           std::optional<int64_t> created);

  // Insert mode: adds our Set-Cookie naming `server` (dated `issued`), and
  // no-cache="set-cookie" when a shared cache could store the response.
  void insert_cookie(ResponseHeader& res,
                     boost::beast::http::verb method, const affinity::StickyCookie& sticky,
                     const affinity::Server& server, int64_t issued, bool tls,
                     std::optional<int64_t> created);

 private:
  std::optional<std::string_view> take_sticky_cookie(Request& req,
                                                     const affinity::StickyCookie& sticky);

  std::string joined_, rest_, learn_value_, set_cookie_;
  // The request's cookies as read_request saw them: its one Cookie field's
  // value (in the request's storage, which outlives the exchange's use of
  // it) or joined_.
  std::string_view cookies_;
  std::vector<std::string> set_cookies_;
};

// Whether a shared cache could store this response (RFC 9111 §3), in which
// case a Set-Cookie on it must be marked no-cache="set-cookie".
bool shared_cacheable(const ResponseHeader& res,
                      boost::beast::http::verb method);

}  // namespace sag::session
