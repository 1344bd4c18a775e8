// How RedisAffinityStore names affinity keys in Redis (the format is
// described in redis_affinity_store.h, "Keys are sealed" and "Redis keys"):
// - sealing: a raw key "<backend>\0<KIND>\0<value>" (KIND an upper-case
//   letter) becomes "<backend>\0<kind>\0<digest>" (kind in lower case, the
//   digest 32 lower-case hex digits of SipHash-2-4-128 under a key derived
//   from the secret), so no learned session id or client address leaves the
//   process;
// - encoding: `<prefix>a:<backend>:<kind>:<value>`, each part
//   percent-encoded, and back.
// Replicas with the same secret compute the same Redis keys: changing
// anything here loses every shared session at a rolling upgrade.
//
// Threads: immutable once built; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sag::affinity {

class RedisKeyCodec {
 public:
  // Empty: the built-in secret.
  explicit RedisKeyCodec(std::string_view secret);
  // `key` sealed into `out` (its old content replaced: a reused buffer
  // allocates nothing once large enough). Keys whose kind is not an
  // upper-case letter (sealed already, or not of the form) are copied.
  void seal(std::string_view key, std::string& out) const;
  std::string seal(std::string_view key) const {
    std::string out;
    seal(key, out);
    return out;
  }
  // A key as read from Redis: a sealed one as it is, a raw one (upper-case
  // kind: an older version's) sealed; nullopt when it is neither (a lower-
  // case kind without a well-formed digest).
  std::optional<std::string> accept(std::string key) const;
  static constexpr size_t kDigestChars = 32;

  // The Redis key for a (sealed) affinity key, and back (nullopt: not one of
  // ours). Encoding only: no sealing.
  static std::string encode(std::string_view prefix, std::string_view key);
  static std::optional<std::string> decode(std::string_view prefix, std::string_view redis_key);
  // SCAN MATCH pattern of every affinity key under `prefix` (the prefix
  // taken literally).
  static std::string scan_pattern(std::string_view prefix);

 private:
  uint64_t k0_ = 0, k1_ = 0;
};

}  // namespace sag::affinity
