#include "config/endpoint.h"

#include <arpa/inet.h>

#include <charconv>

namespace sag::config {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[64];
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, a.bytes.data()) != 1) return std::nullopt;
    a.v6 = false;
  } else {
    if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
    a.v6 = true;
  }
  return a;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text, bool allow_port_zero) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos) return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // v6 needs brackets
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || p > 65535) return std::nullopt;
  if (p == 0 && !allow_port_zero) return std::nullopt;
  Endpoint e;
  e.port = static_cast<uint16_t>(p);
  if (host == "localhost") host = "127.0.0.1";
  auto ip = IpAddress::parse(host);
  if (!ip) return std::nullopt;
  e.ip = *ip;
  return e;
}

std::string Endpoint::to_string() const {
  // Appended piece by piece: g++ 12 warns falsely (-Wrestrict, GCC bug
  // 105329) on `"[" + std::string`.
  std::string out;
  if (ip.v6) out += '[';
  out += ip.to_string();
  if (ip.v6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

}  // namespace sag::config
