#include "session/http2/h2_request.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <boost/beast/core/string.hpp>

#include "config/gateway_config.h"

namespace sag::session {
namespace http = boost::beast::http;

bool take_h2_header(H2Stream& st, std::string_view name, std::string_view value,
                    const config::LimitsConfig& limits) {
  st.header_bytes += name.size() + value.size() + 32;
  if (st.too_large || st.header_bytes > limits.max_header_bytes ||
      ++st.header_count > limits.max_headers) {
    st.too_large = true;
    return true;
  }
  if (!name.empty() && name.front() == ':') {
    if (name == ":method") {
      st.req.method_string(value);
      st.x.method.assign(value);
      st.has_method = true;
    } else if (name == ":path") {
      st.req.target(value);
      st.x.path.assign(value);
      st.has_path = true;
    } else if (name == ":authority") {
      st.authority.assign(value);
    }
    return true;
  }
  if (name == "host") {
    if (st.has_host) return false;  // two Hosts: malformed
    st.host.assign(value);
    st.has_host = true;
    return true;
  }
  if (name == "cookie") {
    // Crumbs are joined into one field (RFC 9113 §8.2.3).
    if (!st.cookie.empty()) st.cookie += "; ";
    st.cookie.append(value);
    return true;
  }
  st.req.insert(name, value);
  return true;
}

std::optional<H2Refusal> finish_h2_request(H2Stream& st, const config::LimitsConfig& limits,
                                           bool has_body) {
  if (st.too_large) return H2Refusal{GatewayError::kHeadersTooLarge, {}};
  // RFC 9113 §8.3.1: a request needs :method, and :path unless CONNECT
  // (nghttp2 enforces it; this keeps the Forwarder's contract whatever).
  if (!st.has_method || (!st.has_path && st.req.method() != http::verb::connect))
    return H2Refusal{GatewayError::kMalformedRequest, {}};
  // :authority and Host must name the same thing (RFC 9113 §8.3.1).
  if (!st.authority.empty() && st.has_host && !boost::beast::iequals(st.authority, st.host))
    return H2Refusal{GatewayError::kAuthorityMismatch, {}};
  const std::string& host = st.authority.empty() ? st.host : st.authority;
  if (host.empty()) return H2Refusal{GatewayError::kMissingHost, "missing authority"};
  auto& req = st.req;
  req.set(http::field::host, host);
  if (!st.cookie.empty()) req.set(http::field::cookie, st.cookie);
  const auto cl = req.find(http::field::content_length);
  if (limits.max_body > 0 && cl != req.end()) {
    uint64_t length = 0;
    const auto v = cl->value();
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), length);
    if (ec == std::errc{} && length > limits.max_body)
      return H2Refusal{GatewayError::kBodyTooLarge, {}};
  }
  // A body of unknown length goes to the server chunked.
  if (has_body && cl == req.end()) req.chunked(true);
  return std::nullopt;
}

size_t take_h2_body_in(H2Stream& st, char* buf, size_t cap) {
  const size_t n = std::min(st.in.size() - st.in_off, cap);
  std::memcpy(buf, st.in.data() + st.in_off, n);
  st.in_off += n;
  if (st.in_off == st.in.size()) {
    st.in.clear();
    st.in_off = 0;
  }
  return n;
}

}  // namespace sag::session
