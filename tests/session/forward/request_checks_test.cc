// Request checks before routing (session/forward/request_checks.h).
#include "session/forward/request_checks.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace sag::session {
namespace {
namespace http = boost::beast::http;

RequestHeader head(http::verb method, std::string_view target, std::string_view host) {
  RequestHeader h;
  h.method(method);
  h.target(target);
  h.version(11);
  h.set(http::field::host, host);
  return h;
}

TEST(RequestChecks, OrdinaryRequestsPass) {
  EXPECT_FALSE(check_request(head(http::verb::get, "/", "example.com")));
  EXPECT_FALSE(check_request(head(http::verb::post, "/a?b=c", "example.com:8080")));
  EXPECT_FALSE(check_request(head(http::verb::options, "*", "[::1]:443")));
  EXPECT_FALSE(check_request(head(http::verb::get, "/", "")));  // no Host: routed by default
}

TEST(RequestChecks, ConnectIsRefusedWithAllow) {
  auto r = check_request(head(http::verb::connect, "example.com:443", "example.com"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error, GatewayError::kMethodNotAllowed);
  EXPECT_NE(r->extra_headers.find("Allow: "), std::string_view::npos);
  EXPECT_TRUE(r->extra_headers.ends_with("\r\n"));
}

TEST(RequestChecks, TargetMustBeOriginFormOrAsteriskForOptions) {
  for (auto t : {"*", "example.com", "http://x/", ""}) {
    auto r = check_request(head(http::verb::get, t, "example.com"));
    ASSERT_TRUE(r) << t;
    EXPECT_EQ(r->error, GatewayError::kBadTarget) << t;
  }
}

TEST(RequestChecks, HostMustBeAnAuthority) {
  for (auto h : {"a b", "a\"b", "x<y", "a\\b", "host/path", "ex\x01"}) {
    auto r = check_request(head(http::verb::get, "/", h));
    ASSERT_TRUE(r) << h;
    EXPECT_EQ(r->error, GatewayError::kBadHost) << h;
  }
  EXPECT_TRUE(valid_authority("user-1.example.com:8443"));
  EXPECT_TRUE(valid_authority("[2001:db8::1]:80"));
  EXPECT_FALSE(valid_authority(std::string_view("a\0b", 3)));
  // Every byte value, alone and inside a host: exactly RFC 3986's
  // authority bytes (unreserved, sub-delims, ':', '[', ']', '%') pass.
  const std::string_view allowed = "-._~!$&'()*+,;=:[]%";
  for (int c = 0; c < 256; ++c) {
    const bool ok = std::isalnum(c) != 0 && c < 0x80
                        ? true
                        : allowed.find(static_cast<char>(c)) != std::string_view::npos;
    const std::string host = std::string("a.") + static_cast<char>(c) + "b";
    EXPECT_EQ(valid_authority(std::string(1, static_cast<char>(c))), ok) << c;
    EXPECT_EQ(valid_authority(host), ok) << c;
  }
}

TEST(RequestChecks, IdempotentMethods) {
  for (auto v : {http::verb::get, http::verb::head, http::verb::options, http::verb::trace,
                 http::verb::put, http::verb::delete_})
    EXPECT_TRUE(is_idempotent(v)) << http::to_string(v);
  for (auto v : {http::verb::post, http::verb::patch, http::verb::connect})
    EXPECT_FALSE(is_idempotent(v)) << http::to_string(v);
}

TEST(RequestChecks, WebSocketUpgrade) {
  auto h = head(http::verb::get, "/ws", "x");
  h.set(http::field::connection, "keep-alive, Upgrade");
  h.set(http::field::upgrade, "WebSocket");
  EXPECT_TRUE(is_websocket_upgrade(h));
  h.set(http::field::upgrade, "h2c");
  EXPECT_FALSE(is_websocket_upgrade(h));
  h.set(http::field::upgrade, "websocket");
  h.set(http::field::connection, "close");
  EXPECT_FALSE(is_websocket_upgrade(h));
  h.set(http::field::connection, "upgrade");
  h.method(http::verb::post);
  EXPECT_FALSE(is_websocket_upgrade(h));
}

TEST(RequestChecks, RedirectLocation) {
  std::string out;
  ASSERT_TRUE(redirect_location("example.com:8080", 443, "/a?b", out));
  EXPECT_EQ(out, "Location: https://example.com/a?b\r\n");
  ASSERT_TRUE(redirect_location("example.com", 8443, "/", out));
  EXPECT_EQ(out, "Location: https://example.com:8443/\r\n");
  ASSERT_TRUE(redirect_location("[::1]:80", 443, "/", out));
  EXPECT_EQ(out, "Location: https://[::1]/\r\n");
  EXPECT_FALSE(redirect_location("", 443, "/", out));
}

}  // namespace
}  // namespace sag::session
