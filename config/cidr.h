// An address block ("10.0.0.0/8", "::1/128", or a bare address = full mask),
// used for trusted_proxies. contains() is branch-light and allocation-free:
// it runs for every request that carries X-Forwarded-* headers.
#pragma once

#include <optional>
#include <string_view>

#include "config/endpoint.h"

namespace sag::config {

struct Cidr {
  IpAddress network;  // host bits cleared
  uint32_t prefix = 0;

  static std::optional<Cidr> parse(std::string_view text);
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 blocks.
  bool contains(const IpAddress& addr) const;
};

}  // namespace sag::config
