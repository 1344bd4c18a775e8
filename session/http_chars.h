// Character classes of HTTP/1.1 syntax (RFC 9110 §5.6.2, §5.5), shared by
// the request-head scan, the response reader and the chunked decoder so
// all refuse the same bytes. Table lookups, and 16 bytes at a time with
// SSE2 (8 with word tricks elsewhere): every head byte of every exchange
// goes through these.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sag::session {

namespace chars_detail {

constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
inline constexpr std::array<bool, 256> kTchar = make_tchar_table();

}  // namespace chars_detail

// tchar: the bytes of a token (field names, methods, extension names).
inline bool is_tchar(unsigned char c) { return chars_detail::kTchar[c]; }

// Field-value and quoted-string bytes: HTAB, SP, VCHAR, obs-text. No NUL,
// no other control byte, no DEL.
inline bool is_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

namespace chars_detail {

inline constexpr uint64_t kOnes = 0x0101010101010101ull;
inline constexpr uint64_t kHigh = 0x8080808080808080ull;

// The word tricks below number lanes from the low byte.
static_assert(std::endian::native == std::endian::little);

inline uint64_t load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

// High bit of each byte set where the byte is below 0x20 or equals 0x7f.
inline uint64_t not_value_lanes(uint64_t w) {
  const uint64_t below = (w - kOnes * 0x20) & ~w;
  const uint64_t del = ((w ^ (kOnes * 0x7f)) - kOnes) & ~(w ^ (kOnes * 0x7f));
  return (below | del) & kHigh;
}

// High bit of each byte set where the byte is zero. Exact at the lowest
// set lane (a borrow only marks lanes above a true zero).
inline uint64_t zero_lanes(uint64_t w) { return (w - kOnes) & ~w & kHigh; }

#if defined(__SSE2__)
// Lane mask of the bytes of the 16 at `p` that are below 0x20 or 0x7f.
inline unsigned not_value_mask16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i below = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
  const __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(below, del)));
}

// Lane mask of the CR and LF bytes of the 16 at `p`.
inline unsigned cr_or_lf_mask16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
                                   _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
  return static_cast<unsigned>(_mm_movemask_epi8(hit));
}
#endif

}  // namespace chars_detail

// Index of the first byte of `s` that is not a value byte, or s.size():
// where a field value ends (its CR, when the line is well formed). Blocks
// of 16 (or words of 8) pass at once when no byte in them is below 0x20 or
// 0x7f; a tab found so is stepped over and the search goes on.
inline size_t value_run(std::string_view s) {
  using namespace chars_detail;
  const char* p = s.data();
  const size_t n = s.size();
  size_t i = 0;
  for (;;) {
    size_t hit = n;  // the first byte below 0x20 or 0x7f from i on
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
      if (const unsigned m = not_value_mask16(p + i); m != 0) {
        hit = i + static_cast<size_t>(__builtin_ctz(m));
        break;
      }
    }
#endif
    if (hit == n) {
      for (; i + 8 <= n; i += 8) {
        if (const uint64_t m = not_value_lanes(load8(p + i)); m != 0) {
          hit = i + static_cast<size_t>(__builtin_ctzll(m)) / 8;  // the lowest lane is exact
          break;
        }
      }
    }
    if (hit == n) {
      for (; i < n; ++i) {
        if (!is_value_byte(static_cast<unsigned char>(p[i])) || p[i] == '\t') {
          hit = i;
          break;
        }
      }
    }
    if (hit == n || p[hit] != '\t') return hit;
    i = hit + 1;
  }
}

// Whether every byte of `s` is a value byte.
inline bool all_value_bytes(std::string_view s) { return value_run(s) == s.size(); }

namespace chars_detail {

#if defined(__SSE2__)
// Lane mask of the bytes of the 16 at `p` that are letters, digits or '-':
// the bytes of nearly every field name, and all token bytes.
inline unsigned name_mask16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // Signed compares: bytes from 0x80 are negative and fall outside both.
  const __m128i lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
  const __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
                                      _mm_cmplt_epi8(lower, _mm_set1_epi8('z' + 1)));
  const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
  const __m128i dash = _mm_cmpeq_epi8(v, _mm_set1_epi8('-'));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(alpha, digit), dash)));
}
#endif

}  // namespace chars_detail

// Length of the token at the start of `s` (0 when it starts with a
// non-token byte). Letters, digits and '-' pass 16 at a time; the first
// other byte and what follows it go by the table.
inline size_t token_length(std::string_view s) {
  size_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= s.size(); i += 16) {
    const unsigned other = ~chars_detail::name_mask16(s.data() + i) & 0xffffu;
    if (other != 0) {
      i += static_cast<size_t>(__builtin_ctz(other));
      break;
    }
  }
#endif
  while (i < s.size() && is_tchar(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

// Index of the first CR or LF in `s`, or s.size(): 16 bytes at a time
// (or 8), then byte by byte.
inline size_t find_cr_or_lf(std::string_view s) {
  using namespace chars_detail;
  size_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= s.size(); i += 16) {
    const unsigned hit = cr_or_lf_mask16(s.data() + i);
    if (hit != 0) return i + static_cast<size_t>(__builtin_ctz(hit));
  }
#endif
  for (; i + 8 <= s.size(); i += 8) {
    const uint64_t w = load8(s.data() + i);
    const uint64_t hit = zero_lanes(w ^ (kOnes * '\r')) | zero_lanes(w ^ (kOnes * '\n'));
    if (hit != 0) return i + static_cast<size_t>(__builtin_ctzll(hit)) / 8;
  }
  for (; i < s.size(); ++i)
    if (s[i] == '\r' || s[i] == '\n') return i;
  return s.size();
}

// Whether `name` equals `lower` (lowercase, of the same length) ignoring
// ASCII case, a word at a time (the last word overlapping the one before,
// so no byte-by-byte tail). OR-ing 0x20 lowercases letters and keeps '-' and
// digits; token bytes never map onto a letter otherwise.
inline bool equals_lowercase(std::string_view name, std::string_view lower) {
  const char* a = name.data();
  const char* b = lower.data();
  const size_t n = name.size();
  if (n >= 8) {
    constexpr uint64_t kCase = 0x2020202020202020ull;
    if (n <= 16) {  // most names: a word from each end, no loop
      uint64_t x1, y1, x2, y2;
      std::memcpy(&x1, a, 8);
      std::memcpy(&y1, b, 8);
      std::memcpy(&x2, a + n - 8, 8);
      std::memcpy(&y2, b + n - 8, 8);
      return (((x1 | kCase) ^ y1) | ((x2 | kCase) ^ y2)) == 0;
    }
    for (size_t i = 0;; i += 8) {
      if (i + 8 > n) i = n - 8;
      uint64_t x, y;
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      if ((x | kCase) != y) return false;
      if (i + 8 == n) return true;
    }
  }
  if (n >= 4) {
    constexpr uint32_t kCase = 0x20202020u;
    uint32_t x1, y1, x2, y2;
    std::memcpy(&x1, a, 4);
    std::memcpy(&y1, b, 4);
    std::memcpy(&x2, a + n - 4, 4);
    std::memcpy(&y2, b + n - 4, 4);
    return (x1 | kCase) == y1 && (x2 | kCase) == y2;
  }
  for (size_t i = 0; i < n; ++i)
    if ((static_cast<unsigned char>(a[i]) | 0x20) != static_cast<unsigned char>(b[i])) return false;
  return true;
}

}  // namespace sag::session
