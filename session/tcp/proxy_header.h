// The PROXY protocol v2 header (haproxy.org/download/2.8/doc/proxy-protocol.txt
// §2.2) that `proxy_protocol: v2` sends to a tcp backend's servers as the
// first bytes of each connection, so the server sees the client's address.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace sag::session {

class ProxyHeader {
 public:
  // The longest header written here (IPv6: 16 + 36 bytes).
  static constexpr size_t kMaxSize = 52;
  using Buffer = std::array<char, kMaxSize>;

  // PROXY command over TCP: `client` is the connection's source, `local` the
  // address it reached on the gateway. IPv4 when both are IPv4 (IPv4-mapped
  // IPv6 counts as IPv4), IPv6 otherwise. Returns the header's size.
  static size_t proxy(const boost::asio::ip::tcp::endpoint& client,
                      const boost::asio::ip::tcp::endpoint& local, Buffer& out);
  // The LOCAL command (no addresses): what health checks send.
  static std::string_view local();
};

}  // namespace sag::session
