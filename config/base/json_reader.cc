#include "config/base/json_reader.h"

#include "config/base/hex.h"

namespace sag::base {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

void JsonReader::skip_ws() {
  while (i_ < s_.size() && is_ws(s_[i_])) ++i_;
}

bool JsonReader::eat(char c) {
  if (at_end() || peek() != c) return false;
  ++i_;
  return true;
}

bool JsonReader::string(std::string& out) {
  out.clear();
  if (!eat('"')) return false;
  while (i_ < s_.size()) {
    const char c = s_[i_++];
    if (c == '"') return true;
    if (static_cast<unsigned char>(c) < 0x20) return false;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i_ >= s_.size()) return false;
    switch (s_[i_++]) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!hex4(cp)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate needs its low half
          uint32_t lo;
          if (!eat('\\') || !eat('u') || !hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return false;
        }
        append_utf8(out, cp);
        break;
      }
      default:
        return false;
    }
  }
  return false;  // unterminated
}

JsonReader::Number JsonReader::number(uint64_t& value, bool& negative) {
  value = 0;
  negative = eat('-');
  if (!is_digit(peek())) return Number::kMalformed;
  if (peek() == '0') {
    ++i_;
    if (is_digit(peek())) return Number::kMalformed;  // 007
  } else {
    while (is_digit(peek())) {
      const uint64_t d = static_cast<uint64_t>(s_[i_++] - '0');
      value = value > (UINT64_MAX - d) / 10 ? UINT64_MAX : value * 10 + d;
    }
  }
  bool fraction = false;
  if (eat('.')) {
    if (!is_digit(peek())) return Number::kMalformed;
    while (is_digit(peek())) ++i_;
    fraction = true;
  }
  if (peek() == 'e' || peek() == 'E') {
    ++i_;
    if (peek() == '+' || peek() == '-') ++i_;
    if (!is_digit(peek())) return Number::kMalformed;
    while (is_digit(peek())) ++i_;
    fraction = true;
  }
  return fraction ? Number::kNotInteger : Number::kInteger;
}

bool JsonReader::hex4(uint32_t& cp) {
  if (s_.size() - i_ < 4) return false;
  cp = 0;
  for (int k = 0; k < 4; ++k) {
    const int h = hex_value(s_[i_++]);
    if (h < 0) return false;
    cp = cp * 16 + static_cast<uint32_t>(h);
  }
  return true;
}

}  // namespace sag::base
