// Copies of a few bytes to a few dozen, inline: header names and values,
// X-Forwarded-For, a cookie. A call to memcpy costs a PLT jump and glibc's
// size dispatch, more than copying a name of a dozen bytes; here a copy is
// two fixed-size loads and two stores (overlapping in the middle).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sag::base {

// Copies `n` bytes from `src` to `dst` (the ranges must not overlap).
inline void copy_short(char* dst, const char* src, std::size_t n) {
  if (n > 32) {
    std::memcpy(dst, src, n);
    return;
  }
  if (n > 16) {
    char a[16], b[16];
    std::memcpy(a, src, 16);
    std::memcpy(b, src + n - 16, 16);
    std::memcpy(dst, a, 16);
    std::memcpy(dst + n - 16, b, 16);
  } else if (n >= 8) {
    std::uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else if (n > 0) {
    // 1 to 3 bytes: the first, the middle and the last cover them all.
    const char first = src[0], mid = src[n / 2], last = src[n - 1];
    dst[0] = first;
    dst[n / 2] = mid;
    dst[n - 1] = last;
  }
}

}  // namespace sag::base
