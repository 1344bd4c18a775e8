#include "session/forward/request_checks.h"

#include <array>
#include <string_view>

#include <boost/beast/core/string.hpp>

#include "config/base/token_list.h"

namespace sag::session {
namespace http = boost::beast::http;

std::optional<RequestRefusal> check_request(const RequestHeader& req) {
  if (req.method() == http::verb::connect)
    return RequestRefusal{GatewayError::kMethodNotAllowed,
                          "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH\r\n"};
  const std::string_view target = req.target();
  if (target == "*" ? req.method() != http::verb::options : !target.starts_with("/"))
    return RequestRefusal{GatewayError::kBadTarget, {}};
  if (!valid_authority(req[http::field::host])) return RequestRefusal{GatewayError::kBadHost, {}};
  return std::nullopt;
}

namespace {

// The bytes of an authority: unreserved, sub-delims, ':' (port), '[' and
// ']' (IPv6 literal) and '%' (percent-encoding, zone ids).
constexpr std::array<bool, 256> kAuthorityByte = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=:[]%")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

}  // namespace

bool valid_authority(std::string_view host) {
  for (unsigned char c : host)
    if (!kAuthorityByte[c]) return false;
  return true;
}

bool is_idempotent(http::verb v) {
  switch (v) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::trace:
    case http::verb::put:
    case http::verb::delete_:
      return true;
    default:
      return false;
  }
}

bool is_websocket_upgrade(const RequestHeader& req) {
  return req.method() == http::verb::get && req.may_have(http::field::upgrade) &&
         base::has_token(req[http::field::connection], "upgrade") &&
         boost::beast::iequals(req[http::field::upgrade], "websocket");
}

bool redirect_location(std::string_view host, uint16_t https_port, std::string_view path,
                       std::string& out) {
  if (host.empty()) return false;
  std::string_view bare = host;
  if (bare.front() == '[') {
    bare = bare.substr(0, bare.find(']') + 1);
  } else if (auto colon = bare.rfind(':'); colon != std::string_view::npos) {
    bare = bare.substr(0, colon);
  }
  out = "Location: https://";
  out += bare;
  if (https_port != 443) {
    out += ':';
    out += std::to_string(https_port);
  }
  out += path;
  out += "\r\n";
  return true;
}

}  // namespace sag::session
