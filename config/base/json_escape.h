// The one JSON string writer: access log lines and admin API bodies alike.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sag::base {

// Appends s as a JSON string literal, quotes included. `"` and `\` are
// backslash-escaped, control characters and DEL written as \u00XX. The text
// need not be UTF-8 (request paths are client bytes), but the output must
// be: well-formed UTF-8 sequences are copied, and every other byte >= 0x80
// is written as \u00XX, its Latin-1 reading, so the byte's value stays
// readable in the output (a U+FFFD would lose it).
void append_json_string(std::string& out, std::string_view s);

// The length of the well-formed UTF-8 sequence at the start of s (2 to 4:
// no overlongs, no surrogates, nothing past U+10FFFF), or 0 when s starts
// with anything else (ASCII included).
size_t utf8_sequence_length(std::string_view s);

}  // namespace sag::base
