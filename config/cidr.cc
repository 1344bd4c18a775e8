#include "config/cidr.h"

#include <charconv>

namespace sag::config {
namespace {

void clear_host_bits(IpAddress& a, uint32_t prefix) {
  const uint32_t total = a.v6 ? 128 : 32;
  for (uint32_t bit = prefix; bit < total; ++bit) a.bytes[bit / 8] &= ~(0x80u >> (bit % 8));
}

bool is_v4_mapped(const IpAddress& a) {
  if (!a.v6) return false;
  for (int i = 0; i < 10; ++i)
    if (a.bytes[i] != 0) return false;
  return a.bytes[10] == 0xff && a.bytes[11] == 0xff;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  const uint32_t total = ip->v6 ? 128 : 32;
  uint32_t prefix = total;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || prefix > total)
      return std::nullopt;
  }
  Cidr c;
  c.network = *ip;
  c.prefix = prefix;
  clear_host_bits(c.network, prefix);
  return c;
}

bool Cidr::contains(const IpAddress& addr) const {
  IpAddress a = addr;
  if (!network.v6 && is_v4_mapped(addr)) {
    a.v6 = false;
    for (int i = 0; i < 4; ++i) a.bytes[i] = addr.bytes[12 + i];
    for (int i = 4; i < 16; ++i) a.bytes[i] = 0;
  }
  if (a.v6 != network.v6) return false;
  uint32_t full = prefix / 8;
  for (uint32_t i = 0; i < full; ++i)
    if (a.bytes[i] != network.bytes[i]) return false;
  if (uint32_t rest = prefix % 8) {
    uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
    if ((a.bytes[full] & mask) != network.bytes[full]) return false;
  }
  return true;
}

}  // namespace sag::config
