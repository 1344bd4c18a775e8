// A parsed "host:port" / "[v6]:port" socket address, without Asio, so config
// stays free of networking headers. Only numeric addresses are accepted: a
// gateway that resolves names at start-up silently pins whatever DNS said.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sag::config {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses the first 4

  // Numeric IPv4 or IPv6 (no brackets); nullopt when malformed.
  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

struct Endpoint {
  IpAddress ip;
  uint16_t port = 0;

  // "1.2.3.4:80", "[::1]:80", "localhost:80" (localhost means 127.0.0.1).
  // Port 0 is allowed only when allow_port_zero (listeners in tests).
  static std::optional<Endpoint> parse(std::string_view text, bool allow_port_zero = false);
  std::string to_string() const;  // "1.2.3.4:80" or "[::1]:80"
  bool operator==(const Endpoint&) const = default;
};

}  // namespace sag::config
