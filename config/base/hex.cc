#include "config/base/hex.h"

namespace sag::base {
namespace {

constexpr char kLowerDigits[] = "0123456789abcdef";
constexpr char kUpperDigits[] = "0123456789ABCDEF";

}  // namespace

void append_hex_byte(std::string& out, unsigned char byte, HexCase hex_case) {
  const char* digits = hex_case == HexCase::kLower ? kLowerDigits : kUpperDigits;
  out += digits[byte >> 4];
  out += digits[byte & 15];
}

void append_hex(std::string& out, std::string_view bytes, HexCase hex_case) {
  out.reserve(out.size() + 2 * bytes.size());
  for (char c : bytes) append_hex_byte(out, static_cast<unsigned char>(c), hex_case);
}

std::string hex_encode(std::string_view bytes, HexCase hex_case) {
  std::string out;
  append_hex(out, bytes, hex_case);
  return out;
}

std::optional<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

}  // namespace sag::base
