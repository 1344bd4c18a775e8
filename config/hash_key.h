// Where a hashing balancer takes its key from: a backend's `hash_key`
// ("header:NAME", "cookie:NAME", "path", "source"), parsed once at load so
// the request path only switches on the result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sag::config {

enum class HashSource : uint8_t { kNone, kHeader, kCookie, kPath, kSource };

struct HashKey {
  HashSource source = HashSource::kNone;
  std::string name;  // the header or cookie name for kHeader / kCookie

  // NAME must be an RFC 9110 token; nullopt when malformed.
  static std::optional<HashKey> parse(std::string_view text);
  bool operator==(const HashKey&) const = default;
};

}  // namespace sag::config
