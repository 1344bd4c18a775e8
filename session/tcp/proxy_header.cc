#include "session/tcp/proxy_header.h"

#include <cstring>

namespace sag::session {
namespace asio = boost::asio;

namespace {

constexpr char kSignature[12] = {'\x0D', '\x0A', '\x0D', '\x0A', '\x00', '\x0D',
                                 '\x0A', '\x51', '\x55', '\x49', '\x54', '\x0A'};
constexpr char kVersionProxy = '\x21';  // version 2, PROXY
constexpr char kVersionLocal = '\x20';  // version 2, LOCAL
constexpr char kTcp4 = '\x11';
constexpr char kTcp6 = '\x21';

// An IPv4 address, or IPv4-mapped IPv6 as IPv4; false for other IPv6.
bool as_v4(const asio::ip::address& a, asio::ip::address_v4& out) {
  if (a.is_v4()) {
    out = a.to_v4();
    return true;
  }
  if (a.to_v6().is_v4_mapped()) {
    out = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return true;
  }
  return false;
}

asio::ip::address_v6 as_v6(const asio::ip::address& a) {
  return a.is_v6() ? a.to_v6() : asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4());
}

char* put_port(char* p, unsigned short port) {
  *p++ = static_cast<char>(port >> 8);
  *p++ = static_cast<char>(port & 0xff);
  return p;
}

}  // namespace

size_t ProxyHeader::proxy(const asio::ip::tcp::endpoint& client, const asio::ip::tcp::endpoint& local,
                          Buffer& out) {
  char* p = out.data();
  std::memcpy(p, kSignature, sizeof kSignature);
  p += sizeof kSignature;
  *p++ = kVersionProxy;
  asio::ip::address_v4 c4, l4;
  if (as_v4(client.address(), c4) && as_v4(local.address(), l4)) {
    *p++ = kTcp4;
    p = put_port(p, 12);  // the length of what follows
    const auto cb = c4.to_bytes(), lb = l4.to_bytes();
    p = std::copy(cb.begin(), cb.end(), p);
    p = std::copy(lb.begin(), lb.end(), p);
  } else {
    *p++ = kTcp6;
    p = put_port(p, 36);
    const auto cb = as_v6(client.address()).to_bytes(), lb = as_v6(local.address()).to_bytes();
    p = std::copy(cb.begin(), cb.end(), p);
    p = std::copy(lb.begin(), lb.end(), p);
  }
  p = put_port(p, client.port());
  p = put_port(p, local.port());
  return static_cast<size_t>(p - out.data());
}

std::string_view ProxyHeader::local() {
  static constexpr char kLocal[16] = {'\x0D', '\x0A', '\x0D', '\x0A', '\x00', '\x0D', '\x0A', '\x51',
                                      '\x55', '\x49', '\x54', '\x0A', kVersionLocal, '\x00', '\x00', '\x00'};
  return std::string_view(kLocal, sizeof kLocal);
}

}  // namespace sag::session
