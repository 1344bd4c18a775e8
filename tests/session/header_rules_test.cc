// Hop-by-hop removal and X-Forwarded-* / Forwarded (session/header_rules.h,
// docs/behaviour.md#request-path).
#include "session/header_rules.h"
#include "session/http_message.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "config/cidr.h"

namespace sag::session {
namespace {

namespace http = boost::beast::http;
using Fields = std::vector<std::pair<std::string, std::string>>;

session::Fields make(const Fields& in) {
  session::Fields f;
  for (const auto& [n, v] : in) f.insert(n, v);
  return f;
}

// Every field, in order, as written.
Fields dump(const session::Fields& f) {
  Fields out;
  for (const auto& field : f)
    out.emplace_back(std::string(field.name_string()), std::string(field.value()));
  return out;
}

std::vector<std::string> values(const session::Fields& f, std::string_view name) {
  std::vector<std::string> out;
  auto [a, b] = f.equal_range(name);
  for (auto it = a; it != b; ++it) out.emplace_back(it->value());
  return out;
}

config::Cidr cidr(std::string_view s) {
  auto c = config::Cidr::parse(s);
  EXPECT_TRUE(c) << s;
  return c.value_or(config::Cidr{});
}

// `ip` must outlive the address (ip_text views it): pass literals.
ClientAddress client(std::string_view ip, bool tls = false, uint16_t listener_port = 8443,
                     uint16_t port = 51000) {
  ClientAddress a;
  auto parsed = config::IpAddress::parse(ip);
  EXPECT_TRUE(parsed) << ip;
  a.ip = parsed.value_or(config::IpAddress{});
  a.ip_text = ip;
  a.port = port;
  a.tls = tls;
  a.listener_port = listener_port;
  return a;
}

config::ForwardedConfig trusting_localhost() {
  config::ForwardedConfig c;
  c.trusted_proxies = {cidr("127.0.0.0/8"), cidr("::1/128")};
  return c;
}

TEST(StripHopByHop, RemovesTheFixedSet) {
  auto f = make({{"Host", "a"},
                 {"Connection", "keep-alive"},
                 {"Keep-Alive", "timeout=5"},
                 {"Proxy-Connection", "keep-alive"},
                 {"TE", "trailers"},
                 {"Trailer", "X-Checksum"},
                 {"Accept", "*/*"},
                 {"Transfer-Encoding", "chunked"},
                 {"Upgrade", "websocket"},
                 {"Proxy-Authorization", "Basic Zm9vOmJhcg=="},
                 {"Content-Length", "5"},
                 {"Authorization", "Bearer x"},
                 {"Cookie", "a=1"}});
  strip_hop_by_hop(f);
  EXPECT_EQ(dump(f), (Fields{{"Host", "a"},
                            {"Accept", "*/*"},
                            {"Content-Length", "5"},
                            {"Authorization", "Bearer x"},
                            {"Cookie", "a=1"}}));
}

TEST(StripHopByHop, RemovesFieldsListedInConnection) {
  auto f = make({{"Host", "a"},
                 {"Connection", "close, X-Secret,  x-other ,"},
                 {"X-Secret", "1"},
                 {"x-other", "2"},
                 {"X-OTHER", "3"},
                 {"X-Kept", "4"},
                 {"connection", "X-Third"},
                 {"X-Third", "5"},
                 {"X-Secret-Not", "6"}});
  strip_hop_by_hop(f);
  EXPECT_EQ(dump(f), (Fields{{"Host", "a"}, {"X-Kept", "4"}, {"X-Secret-Not", "6"}}));
}

// "Connection: keep-alive" whole is skipped without walking the list; any
// other value, even one starting or ending like it, is walked.
TEST(StripHopByHop, KeepAliveShortcutOnlyForTheWholeValue) {
  auto f = make({{"Connection", "Keep-Alive"},
                 {"Connection", "keep-alive, X-Secret"},
                 {"Connection", "keep-alivex"},
                 {"X-Secret", "1"},
                 {"keep-alivex", "2"},
                 {"keep-alive", "3"},
                 {"X-Kept", "4"}});
  strip_hop_by_hop(f);
  EXPECT_EQ(dump(f), (Fields{{"X-Kept", "4"}}));
}

// One pass reads each Connection field where it stands: a field it names
// goes wherever it is, before the Connection field too, and whichever case
// either is written in.
TEST(StripHopByHop, FieldsNamedBeforeTheirConnectionFieldGoToo) {
  auto f = make({{"Host", "a"},
                 {"x-early", "1"},
                 {"Keep-Alive", "timeout=5"},
                 {"X-Kept", "2"},
                 {"Connection", "X-EARLY, keep-alive, Connection, x-late"},
                 {"X-Late", "3"},
                 {"keep-alive", "max=9"}});
  strip_hop_by_hop(f);
  EXPECT_EQ(dump(f), (Fields{{"Host", "a"}, {"X-Kept", "2"}}));
}

TEST(StripHopByHop, NeverRemovesFramingOrHostThroughConnection) {
  auto f = make({{"Host", "a"},
                 {"Content-Length", "5"},
                 {"Connection", "Content-Length, HOST, host, content-length, X-A"},
                 {"X-A", "1"},
                 {"X-B", "2"}});
  strip_hop_by_hop(f);
  EXPECT_EQ(dump(f), (Fields{{"Host", "a"}, {"Content-Length", "5"}, {"X-B", "2"}}));
}

TEST(StripHopByHop, EndToEndFieldsUntouched) {
  const Fields in = {{"Host", "example.com"},   {"User-Agent", "curl/8"},
                     {"Accept", "text/html"},   {"Cookie", "a=1; b=2"},
                     {"Cookie", "c=3"},         {"X-Request-Id", "abc"},
                     {"Content-Type", "text/plain"}, {"Content-Length", "10"},
                     {"Cache-Control", "no-cache"}};
  auto f = make(in);
  strip_hop_by_hop(f);
  EXPECT_EQ(dump(f), in);
}

TEST(StripHopByHop, EmptyAndConnectionWithoutTokens) {
  session::Fields empty;
  strip_hop_by_hop(empty);
  EXPECT_EQ(empty.begin(), empty.end());
  auto f = make({{"Connection", ""}, {"Connection", " , ,"}, {"X", "1"}});
  strip_hop_by_hop(f);
  EXPECT_EQ(dump(f), (Fields{{"X", "1"}}));
}

TEST(IsTrustedProxy, CidrMatching) {
  config::ForwardedConfig c = trusting_localhost();
  c.trusted_proxies.push_back(cidr("10.0.0.0/8"));
  auto ip = [](const char* s) { return config::IpAddress::parse(s).value(); };
  EXPECT_TRUE(is_trusted_proxy(c, ip("127.0.0.1")));
  EXPECT_TRUE(is_trusted_proxy(c, ip("127.255.1.2")));
  EXPECT_TRUE(is_trusted_proxy(c, ip("10.20.30.40")));
  EXPECT_TRUE(is_trusted_proxy(c, ip("::1")));
  EXPECT_FALSE(is_trusted_proxy(c, ip("::2")));
  EXPECT_FALSE(is_trusted_proxy(c, ip("128.0.0.1")));
  EXPECT_FALSE(is_trusted_proxy(c, ip("11.0.0.1")));
  EXPECT_FALSE(is_trusted_proxy(c, ip("192.0.2.1")));
  EXPECT_FALSE(is_trusted_proxy(config::ForwardedConfig{}, ip("127.0.0.1")));
}

TEST(ApplyForwarded, UntrustedClientHeadersDropped) {
  auto f = make({{"Host", "example.com"},
                 {"X-Forwarded-For", "6.6.6.6"},
                 {"X-Forwarded-Proto", "https"},
                 {"X-Forwarded-Host", "evil.example"},
                 {"X-Forwarded-Port", "1"},
                 {"x-forwarded-for", "7.7.7.7"},
                 {"Forwarded", "for=6.6.6.6"},
                 {"Accept", "*/*"}});
  auto c = client("192.0.2.10", false, 8080);
  apply_forwarded(f, trusting_localhost(), c, "example.com");
  EXPECT_EQ(values(f, "X-Forwarded-For"), (std::vector<std::string>{"192.0.2.10"}));
  EXPECT_EQ(values(f, "X-Forwarded-Proto"), (std::vector<std::string>{"http"}));
  EXPECT_EQ(values(f, "X-Forwarded-Host"), (std::vector<std::string>{"example.com"}));
  EXPECT_EQ(values(f, "X-Forwarded-Port"), (std::vector<std::string>{"8080"}));
  EXPECT_TRUE(values(f, "Forwarded").empty());
  EXPECT_EQ(values(f, "Accept"), (std::vector<std::string>{"*/*"}));
  EXPECT_EQ(values(f, "Host"), (std::vector<std::string>{"example.com"}));
}

TEST(ApplyForwarded, NoTrustedProxiesTrustsNoOne) {
  auto f = make({{"X-Forwarded-For", "1.2.3.4"}, {"X-Forwarded-Proto", "https"}});
  auto c = client("127.0.0.1");
  apply_forwarded(f, config::ForwardedConfig{}, c, "h");
  EXPECT_EQ(values(f, "X-Forwarded-For"), (std::vector<std::string>{"127.0.0.1"}));
  EXPECT_EQ(values(f, "X-Forwarded-Proto"), (std::vector<std::string>{"http"}));
}

TEST(ApplyForwarded, TrustedProxyChainAppended) {
  auto f = make({{"Host", "example.com"},
                 {"X-Forwarded-For", "1.2.3.4"},
                 {"Accept", "*/*"},
                 {"X-Forwarded-For", " 5.6.7.8 "}});
  auto c = client("127.0.0.1");
  apply_forwarded(f, trusting_localhost(), c, "example.com");
  EXPECT_EQ(values(f, "X-Forwarded-For"),
            (std::vector<std::string>{"1.2.3.4, 5.6.7.8, 127.0.0.1"}));
}

TEST(ApplyForwarded, TrustedV6Proxy) {
  auto f = make({{"X-Forwarded-For", "2001:db8::7"}});
  auto c = client("::1", true);
  apply_forwarded(f, trusting_localhost(), c, "example.com");
  EXPECT_EQ(values(f, "X-Forwarded-For"), (std::vector<std::string>{"2001:db8::7, ::1"}));
  // ::2 is outside ::1/128.
  auto g = make({{"X-Forwarded-For", "2001:db8::7"}});
  auto c2 = client("::2", true);
  apply_forwarded(g, trusting_localhost(), c2, "example.com");
  EXPECT_EQ(values(g, "X-Forwarded-For"), (std::vector<std::string>{"::2"}));
}

TEST(ApplyForwarded, TrustedProxysProtoHostPortKept) {
  auto f = make({{"X-Forwarded-Proto", "https"},
                 {"X-Forwarded-Host", "public.example"},
                 {"X-Forwarded-Port", "443"}});
  auto c = client("127.0.0.2", false, 8080);
  apply_forwarded(f, trusting_localhost(), c, "internal.example");
  EXPECT_EQ(values(f, "X-Forwarded-Proto"), (std::vector<std::string>{"https"}));
  EXPECT_EQ(values(f, "X-Forwarded-Host"), (std::vector<std::string>{"public.example"}));
  EXPECT_EQ(values(f, "X-Forwarded-Port"), (std::vector<std::string>{"443"}));
  EXPECT_EQ(values(f, "X-Forwarded-For"), (std::vector<std::string>{"127.0.0.2"}));
}

TEST(ApplyForwarded, TrustedProxyWithoutHeadersGetsOurs) {
  session::Fields f;
  auto c = client("127.0.0.1", true, 443);
  apply_forwarded(f, trusting_localhost(), c, "example.com");
  EXPECT_EQ(values(f, "X-Forwarded-For"), (std::vector<std::string>{"127.0.0.1"}));
  EXPECT_EQ(values(f, "X-Forwarded-Proto"), (std::vector<std::string>{"https"}));
  EXPECT_EQ(values(f, "X-Forwarded-Host"), (std::vector<std::string>{"example.com"}));
  EXPECT_EQ(values(f, "X-Forwarded-Port"), (std::vector<std::string>{"443"}));
}

TEST(ApplyForwarded, ProtoAndPortFollowTheListener) {
  session::Fields plain;
  auto c1 = client("192.0.2.1", false, 8080);
  apply_forwarded(plain, config::ForwardedConfig{}, c1, "h.example");
  EXPECT_EQ(values(plain, "X-Forwarded-Proto"), (std::vector<std::string>{"http"}));
  EXPECT_EQ(values(plain, "X-Forwarded-Port"), (std::vector<std::string>{"8080"}));
  session::Fields tls;
  auto c2 = client("192.0.2.1", true, 8443);
  apply_forwarded(tls, config::ForwardedConfig{}, c2, "h.example");
  EXPECT_EQ(values(tls, "X-Forwarded-Proto"), (std::vector<std::string>{"https"}));
  EXPECT_EQ(values(tls, "X-Forwarded-Port"), (std::vector<std::string>{"8443"}));
  EXPECT_EQ(values(tls, "X-Forwarded-Host"), (std::vector<std::string>{"h.example"}));
}

TEST(ApplyForwarded, EmptyHostAddsNoForwardedHost) {
  session::Fields f;
  auto c = client("192.0.2.1");
  apply_forwarded(f, config::ForwardedConfig{}, c, "");
  EXPECT_TRUE(values(f, "X-Forwarded-Host").empty());
}

TEST(ApplyForwarded, TogglesOff) {
  const Fields spoofed = {{"X-Forwarded-For", "6.6.6.6"},
                          {"X-Forwarded-Proto", "https"},
                          {"X-Forwarded-Host", "evil"},
                          {"X-Forwarded-Port", "1"},
                          {"Forwarded", "for=6.6.6.6"}};
  auto c = client("192.0.2.1", true, 8443);
  {
    config::ForwardedConfig cfg;
    cfg.x_forwarded_for = false;
    auto f = make(spoofed);
    apply_forwarded(f, cfg, c, "h");
    EXPECT_TRUE(values(f, "X-Forwarded-For").empty());
    EXPECT_EQ(values(f, "X-Forwarded-Proto"), (std::vector<std::string>{"https"}));
    EXPECT_EQ(values(f, "X-Forwarded-Host"), (std::vector<std::string>{"h"}));
  }
  {
    config::ForwardedConfig cfg;
    cfg.x_forwarded_proto = false;
    auto f = make(spoofed);
    apply_forwarded(f, cfg, c, "h");
    EXPECT_TRUE(values(f, "X-Forwarded-Proto").empty());
    EXPECT_TRUE(values(f, "X-Forwarded-Port").empty());
    EXPECT_EQ(values(f, "X-Forwarded-For"), (std::vector<std::string>{"192.0.2.1"}));
  }
  {
    config::ForwardedConfig cfg;
    cfg.x_forwarded_host = false;
    auto f = make(spoofed);
    apply_forwarded(f, cfg, c, "h");
    EXPECT_TRUE(values(f, "X-Forwarded-Host").empty());
    EXPECT_EQ(values(f, "X-Forwarded-Proto"), (std::vector<std::string>{"https"}));
  }
  {
    config::ForwardedConfig cfg;
    cfg.x_forwarded_for = cfg.x_forwarded_proto = cfg.x_forwarded_host = false;
    auto f = make(spoofed);
    f.insert("Accept", "*/*");
    apply_forwarded(f, cfg, c, "h");
    EXPECT_EQ(dump(f), (Fields{{"Accept", "*/*"}}));
  }
}

TEST(ApplyForwarded, ForwardedHeaderOffByDefault) {
  session::Fields f;
  auto c = client("192.0.2.1");
  apply_forwarded(f, config::ForwardedConfig{}, c, "h");
  EXPECT_TRUE(values(f, "Forwarded").empty());
}

TEST(ApplyForwarded, ForwardedV4) {
  config::ForwardedConfig cfg;
  cfg.forwarded = true;
  session::Fields f;
  auto c = client("192.0.2.60", true);
  apply_forwarded(f, cfg, c, "example.com");
  EXPECT_EQ(values(f, "Forwarded"),
            (std::vector<std::string>{"for=192.0.2.60;proto=https;host=\"example.com\""}));
}

TEST(ApplyForwarded, ForwardedV6IsQuotedAndBracketed) {
  config::ForwardedConfig cfg;
  cfg.forwarded = true;
  session::Fields f;
  auto c = client("2001:db8:cafe::17", false);
  apply_forwarded(f, cfg, c, "example.com:8080");
  EXPECT_EQ(values(f, "Forwarded"),
            (std::vector<std::string>{
                "for=\"[2001:db8:cafe::17]\";proto=http;host=\"example.com:8080\""}));
}

TEST(ApplyForwarded, ForwardedWithoutHost) {
  config::ForwardedConfig cfg;
  cfg.forwarded = true;
  session::Fields f;
  auto c = client("192.0.2.60");
  apply_forwarded(f, cfg, c, "");
  EXPECT_EQ(values(f, "Forwarded"), (std::vector<std::string>{"for=192.0.2.60;proto=http"}));
}

TEST(ApplyForwarded, ForwardedFromTrustedProxyAppended) {
  config::ForwardedConfig cfg = trusting_localhost();
  cfg.forwarded = true;
  auto f = make({{"Forwarded", "for=198.51.100.17;proto=https"}, {"Forwarded", "for=203.0.113.9"}});
  auto c = client("127.0.0.1");
  apply_forwarded(f, cfg, c, "a.example");
  EXPECT_EQ(values(f, "Forwarded"),
            (std::vector<std::string>{"for=198.51.100.17;proto=https, for=203.0.113.9, "
                                      "for=127.0.0.1;proto=http;host=\"a.example\""}));
}

TEST(ApplyForwarded, ForwardedFromUntrustedReplaced) {
  config::ForwardedConfig cfg = trusting_localhost();
  cfg.forwarded = true;
  auto f = make({{"Forwarded", "for=6.6.6.6;host=evil"}});
  auto c = client("192.0.2.1", true);
  apply_forwarded(f, cfg, c, "a.example");
  EXPECT_EQ(values(f, "Forwarded"),
            (std::vector<std::string>{"for=192.0.2.1;proto=https;host=\"a.example\""}));
}

}  // namespace
}  // namespace sag::session
