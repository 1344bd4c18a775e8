// The hash every replica must agree on: request keys for the `source` and
// `hash` balancers (SelectContext::hash), server positions in the Maglev
// table, and the memory store's index and shards.
//
// Definition (fixed; changing it remaps every hashed session). All
// arithmetic is on unsigned 64-bit values modulo 2^64:
//   K1 = 0x9e3779b97f4a7c15, K2 = 0xbf58476d1ce4e5b9, K3 = 0x94d049bb133111eb
//   h = (seed * K1) ^ (len * K3)
//   for each full 8-byte block, bytes b0..b7 read little-endian into w:
//     h = rotl(h ^ (w * K2), 27) * K1
//   if 1..7 bytes remain, read them little-endian into w (high bytes 0) and
//     h = rotl(h ^ (w * K2), 27) * K1
//   result = mix64(h), the splitmix64 finaliser:
//     h ^= h >> 30; h *= K2; h ^= h >> 27; h *= K3; h ^= h >> 31
// So it is the same on every platform, compiler and process (no
// per-process randomisation, unlike std::hash), and costs about a cycle per
// byte (a block's multiply by K2 does not wait for the previous block).
// tests/affinity/balance/stable_hash_test.cc pins known values.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sag::affinity {

// The splitmix64 finaliser (a bijection on 64-bit values).
constexpr uint64_t mix64(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

// Takes the bytes of `data` (binary keys: std::string_view(ptr, len)).
inline uint64_t stable_hash64(std::string_view data, uint64_t seed = 0) {
  constexpr uint64_t k1 = 0x9e3779b97f4a7c15ULL, k2 = 0xbf58476d1ce4e5b9ULL,
                     k3 = 0x94d049bb133111ebULL;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t len = data.size();
  auto load_le = [](const unsigned char* q, size_t n) {
    uint64_t w = 0;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&w, q, n);
    } else {
      for (size_t i = 0; i < n; ++i) w |= static_cast<uint64_t>(q[i]) << (8 * i);
    }
    return w;
  };
  uint64_t h = (seed * k1) ^ (static_cast<uint64_t>(len) * k3);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) h = std::rotl(h ^ (load_le(p + i, 8) * k2), 27) * k1;
  if (i < len) h = std::rotl(h ^ (load_le(p + i, len - i) * k2), 27) * k1;
  return mix64(h);
}

}  // namespace sag::affinity
