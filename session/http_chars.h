// Character classes of HTTP/1.1 syntax (RFC 9110 §5.6.2, §5.5), shared by
// the request-head scan and the chunked decoder so both refuse the same bytes.
#pragma once

#include <cstring>

namespace sag::session {

// tchar: the bytes of a token (field names, methods, extension names).
inline bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Field-value and quoted-string bytes: HTAB, SP, VCHAR, obs-text. No NUL,
// no other control byte, no DEL.
inline bool is_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

}  // namespace sag::session
