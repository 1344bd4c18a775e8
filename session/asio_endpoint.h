// The one conversion from a config address to an Asio endpoint (config/ is
// kept free of networking headers).
#pragma once

#include <algorithm>

#include <boost/asio/ip/tcp.hpp>

#include "config/endpoint.h"

namespace sag::session {

inline boost::asio::ip::tcp::endpoint to_asio_endpoint(const config::Endpoint& e) {
  namespace ip = boost::asio::ip;
  if (e.ip.v6) {
    ip::address_v6::bytes_type b{};
    std::copy(e.ip.bytes.begin(), e.ip.bytes.end(), b.begin());
    return {ip::address_v6(b), e.port};
  }
  ip::address_v4::bytes_type b{};
  std::copy(e.ip.bytes.begin(), e.ip.bytes.begin() + 4, b.begin());
  return {ip::address_v4(b), e.port};
}

}  // namespace sag::session
