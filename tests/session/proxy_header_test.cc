// PROXY protocol v2 headers (session/tcp/proxy_header.h): the exact bytes.
#include "session/tcp/proxy_header.h"

#include <gtest/gtest.h>

#include <string>

namespace sag::session {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

constexpr const char* kSig = "0d0a0d0a000d0a515549540a";

TEST(ProxyHeader, Ipv4) {
  ProxyHeader::Buffer b;
  const size_t n = ProxyHeader::proxy(tcp::endpoint(asio::ip::make_address("192.0.2.10"), 51000),
                                      tcp::endpoint(asio::ip::make_address("10.0.0.1"), 6379), b);
  EXPECT_EQ(n, 28u);
  EXPECT_EQ(hex(std::string_view(b.data(), n)),
            std::string(kSig) + "21" + "11" + "000c" + "c000020a" + "0a000001" + "c738" + "18eb");
}

TEST(ProxyHeader, V4MappedCountsAsIpv4) {
  ProxyHeader::Buffer b;
  const size_t n = ProxyHeader::proxy(tcp::endpoint(asio::ip::make_address("::ffff:127.0.0.2"), 1),
                                      tcp::endpoint(asio::ip::make_address("127.0.0.1"), 2), b);
  EXPECT_EQ(n, 28u);
  EXPECT_EQ(hex(std::string_view(b.data() + 12, 4)), "2111000c");
}

TEST(ProxyHeader, Ipv6) {
  ProxyHeader::Buffer b;
  const size_t n = ProxyHeader::proxy(tcp::endpoint(asio::ip::make_address("2001:db8::1"), 443),
                                      tcp::endpoint(asio::ip::make_address("127.0.0.1"), 80), b);
  EXPECT_EQ(n, 52u);
  const std::string h = hex(std::string_view(b.data(), n));
  EXPECT_EQ(h.substr(24, 8), "21210024");
  EXPECT_EQ(h.substr(32, 32), "20010db8000000000000000000000001");
  EXPECT_EQ(h.substr(64, 32), "00000000000000000000ffff7f000001");  // the local v4, mapped
  EXPECT_EQ(h.substr(96), "01bb0050");
}

TEST(ProxyHeader, Local) {
  EXPECT_EQ(hex(ProxyHeader::local()), std::string(kSig) + "20" + "00" + "0000");
}

}  // namespace
}  // namespace sag::session
