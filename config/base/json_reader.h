// A strict JSON lexer (RFC 8259) for small hand-written parsers: it reads
// the tokens a caller asks for at the current position and never builds a
// tree, so a caller decides what it accepts and says precisely what was
// wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sag::base {

class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}

  void skip_ws();
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  // Consumes c when it is next.
  bool eat(char c);

  // At a '"': reads a string with its escapes (surrogate pairs joined, lone
  // surrogates refused) into out as UTF-8. False on anything malformed.
  bool string(std::string& out);

  enum class Number { kInteger, kNotInteger, kMalformed };
  // At '-' or a digit: a JSON number. kInteger sets value (saturated at
  // UINT64_MAX) and negative; a fraction or exponent is kNotInteger.
  Number number(uint64_t& value, bool& negative);

 private:
  bool hex4(uint32_t& cp);

  std::string_view s_;
  size_t i_ = 0;
};

// Appends code point cp (at most U+10FFFF, not a surrogate) as UTF-8.
void append_utf8(std::string& out, uint32_t cp);

}  // namespace sag::base
