// Comma-separated lists ("a, b ,c"), the form of many header values and
// settings: elements are trimmed of spaces and tabs, empty ones skipped
// (RFC 9110 §5.6.1 asks recipients to ignore them).
#pragma once

#include <cstddef>
#include <string_view>

namespace sag::base {

// A space or a tab (HTTP's optional whitespace).
inline bool is_blank(char c) { return c == ' ' || c == '\t'; }

// s without leading and trailing spaces and tabs.
inline std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// ASCII case-insensitive equality (no locale).
inline bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x += 32;
    if (y >= 'A' && y <= 'Z') y += 32;
    if (x != y) return false;
  }
  return true;
}

// Takes the next non-empty element off the front of `rest` into `token`
// (trimmed); false once none is left. Usage:
//   for (std::string_view t; next_token(rest, t);) ...
bool next_token(std::string_view& rest, std::string_view& token);

// Whether the list holds `name` as an element, or as the name of one with
// a parameter ("max-age=60", "no-cache=\"set-cookie\""): the element up to
// its first '=', space or tab, compared case-insensitively.
bool has_token(std::string_view list, std::string_view name);

}  // namespace sag::base
