// The value forms of the configuration: plain numbers, durations, sizes and
// status ranges. Pure text → value functions; the loader adds positions and
// messages.
//
// Digits only: YAML's own number forms (0x1F, 1_000, +5, 1e3) are refused so
// that what the operator reads is what the gateway uses.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace sag::config {

// "0".."18446744073709551615"; nullopt when empty, not all digits or too big.
std::optional<uint64_t> parse_digits(std::string_view text);
// How many ASCII digits `text` starts with.
size_t leading_digits(std::string_view text);

// "250ms", "5s", "30m", "8h", "0" / "0s"; nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// "16KiB", "1MiB", "1GiB", "512" (bytes); nullopt when malformed.
std::optional<uint64_t> parse_size(std::string_view text);
// "200" or "200-399", each 100..599, low <= high; nullopt when malformed.
std::optional<std::pair<uint16_t, uint16_t>> parse_status_range(std::string_view text);

}  // namespace sag::config
