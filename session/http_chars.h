// Character classes of HTTP/1.1 syntax (RFC 9110 §5.6.2, §5.5), shared by
// the request-head scan, the response reader and the chunked decoder so
// all refuse the same bytes. Table lookups and a word-at-a-time value check:
// every head byte of every exchange goes through these.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

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

// Whether every byte of `s` is a value byte. Eight bytes at a time: a word
// with no byte below 0x20 and none equal to 0x7f passes at once; a word
// that has one (a tab, usually) is checked byte by byte.
inline bool all_value_bytes(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    // A byte < 0x20 (high bit clear) or == 0x7f sets its high bit here.
    const uint64_t below = (w - kOnes * 0x20) & ~w;
    const uint64_t del = ((w ^ (kOnes * 0x7f)) - kOnes) & ~(w ^ (kOnes * 0x7f));
    if (((below | del) & kHigh) != 0) {
      for (size_t j = i; j < i + 8; ++j)
        if (!is_value_byte(static_cast<unsigned char>(s[j]))) return false;
    }
  }
  for (; i < s.size(); ++i)
    if (!is_value_byte(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

// Length of the token at the start of `s` (0 when it starts with a
// non-token byte).
inline size_t token_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_tchar(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

}  // namespace sag::session
