// IpAddress / Endpoint / Cidr parsing and matching.
#include <gtest/gtest.h>

#include "config/cidr.h"
#include "config/endpoint.h"

namespace sag::config {
namespace {

IpAddress ip(std::string_view s) {
  auto a = IpAddress::parse(s);
  EXPECT_TRUE(a) << s;
  return a.value_or(IpAddress{});
}

TEST(IpAddress, ParsesV4AndV6) {
  auto v4 = IpAddress::parse("192.0.2.7");
  ASSERT_TRUE(v4);
  EXPECT_FALSE(v4->v6);
  EXPECT_EQ(v4->bytes[0], 192);
  EXPECT_EQ(v4->bytes[3], 7);
  EXPECT_EQ(v4->to_string(), "192.0.2.7");

  auto v6 = IpAddress::parse("2001:DB8::1");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->v6);
  EXPECT_EQ(v6->bytes[0], 0x20);
  EXPECT_EQ(v6->bytes[15], 1);
  EXPECT_EQ(v6->to_string(), "2001:db8::1");
}

TEST(IpAddress, Rejects) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "[::1]", "::g", "example.com",
                          "fe80::1%eth0", "1.2.3.4/8"})
    EXPECT_FALSE(IpAddress::parse(bad)) << bad;
}

TEST(Endpoint, Parses) {
  auto e = Endpoint::parse("127.0.0.1:9001");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 9001);
  EXPECT_EQ(e->ip, ip("127.0.0.1"));
  EXPECT_EQ(e->to_string(), "127.0.0.1:9001");

  auto v6 = Endpoint::parse("[::1]:443");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->ip.v6);
  EXPECT_EQ(v6->port, 443);
  EXPECT_EQ(v6->to_string(), "[::1]:443");

  auto any6 = Endpoint::parse("[::]:8443");
  ASSERT_TRUE(any6);
  EXPECT_EQ(any6->to_string(), "[::]:8443");

  auto local = Endpoint::parse("localhost:80");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->to_string(), "127.0.0.1:80");

  EXPECT_EQ(Endpoint::parse("1.2.3.4:65535")->port, 65535);
}

TEST(Endpoint, PortZeroOnlyWhenAllowed) {
  EXPECT_FALSE(Endpoint::parse("127.0.0.1:0"));
  auto e = Endpoint::parse("127.0.0.1:0", /*allow_port_zero=*/true);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 0);
}

TEST(Endpoint, Rejects) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:99999",
                          "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:80a", "127.0.0.1: 80", "127.0.0.1:080808",
                          "::1:80", "[::1]", "[::1]80", "[::1:80", "[1.2.3.4]:80", "example.com:80",
                          "[fe80::1%eth0]:80"})
    EXPECT_FALSE(Endpoint::parse(bad, true)) << bad;
}

TEST(Cidr, ParsesAndClearsHostBits) {
  auto c = Cidr::parse("10.1.2.3/8");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix, 8u);
  EXPECT_EQ(c->network, ip("10.0.0.0"));

  auto bare4 = Cidr::parse("192.0.2.7");
  ASSERT_TRUE(bare4);
  EXPECT_EQ(bare4->prefix, 32u);
  auto bare6 = Cidr::parse("::1");
  ASSERT_TRUE(bare6);
  EXPECT_EQ(bare6->prefix, 128u);

  auto odd = Cidr::parse("192.168.1.77/23");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->network, ip("192.168.0.0"));
}

TEST(Cidr, Rejects) {
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8/9", "10.0.0.0/-1",
                          "10.0.0.0/ 8", "10.0.0.0/8 ", "example.com/8", "[::1]/128"})
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
}

TEST(Cidr, ContainsV4) {
  auto c = *Cidr::parse("10.0.0.0/8");
  EXPECT_TRUE(c.contains(ip("10.0.0.0")));
  EXPECT_TRUE(c.contains(ip("10.255.255.255")));
  EXPECT_FALSE(c.contains(ip("11.0.0.0")));
  EXPECT_FALSE(c.contains(ip("9.255.255.255")));

  auto odd = *Cidr::parse("192.168.0.0/23");
  EXPECT_TRUE(odd.contains(ip("192.168.1.255")));
  EXPECT_FALSE(odd.contains(ip("192.168.2.0")));

  auto host = *Cidr::parse("192.0.2.7");
  EXPECT_TRUE(host.contains(ip("192.0.2.7")));
  EXPECT_FALSE(host.contains(ip("192.0.2.6")));

  auto all = *Cidr::parse("0.0.0.0/0");
  EXPECT_TRUE(all.contains(ip("203.0.113.9")));
  EXPECT_FALSE(all.contains(ip("2001:db8::1")));  // families never mix, except v4-mapped
}

TEST(Cidr, ContainsV6) {
  auto c = *Cidr::parse("2001:db8::/33");
  EXPECT_TRUE(c.contains(ip("2001:db8:7fff:ffff::1")));
  EXPECT_FALSE(c.contains(ip("2001:db8:8000::")));
  EXPECT_FALSE(c.contains(ip("10.0.0.1")));

  auto lo = *Cidr::parse("::1/128");
  EXPECT_TRUE(lo.contains(ip("::1")));
  EXPECT_FALSE(lo.contains(ip("::2")));
}

TEST(Cidr, V4MappedMatchesV4Blocks) {
  auto c = *Cidr::parse("10.0.0.0/8");
  EXPECT_TRUE(c.contains(ip("::ffff:10.1.2.3")));
  EXPECT_FALSE(c.contains(ip("::ffff:11.1.2.3")));
  EXPECT_FALSE(c.contains(ip("::fffe:10.1.2.3")));  // not v4-mapped
  EXPECT_TRUE((*Cidr::parse("127.0.0.1")).contains(ip("::ffff:127.0.0.1")));
}

}  // namespace
}  // namespace sag::config
