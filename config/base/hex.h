// Hexadecimal digits: one decoder and one encoder for the whole tree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sag::base {

// The value of a hex digit (either case), -1 for any other character.
constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

enum class HexCase { kLower, kUpper };

// Appends the two hex digits of one byte.
void append_hex_byte(std::string& out, unsigned char byte, HexCase hex_case = HexCase::kLower);
// Appends two hex digits per byte of `bytes`, in order.
void append_hex(std::string& out, std::string_view bytes, HexCase hex_case = HexCase::kLower);
std::string hex_encode(std::string_view bytes, HexCase hex_case = HexCase::kLower);
// The bytes of an even-length string of hex digits (either case); nullopt on
// an odd length or any other character.
std::optional<std::string> hex_decode(std::string_view hex);

}  // namespace sag::base
