#include "config/units.h"

#include <charconv>
#include <limits>

namespace sag::config {

std::optional<uint64_t> parse_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

size_t leading_digits(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  return i;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  using Duration = std::chrono::milliseconds;
  // Timers add durations to steady_clock::now() in nanoseconds; keeping
  // every duration below half of what int64 nanoseconds hold (~146 years)
  // means that sum can never overflow.
  constexpr uint64_t kMaxMs = std::numeric_limits<int64_t>::max() / 1'000'000 / 2;
  const size_t n = leading_digits(text);
  auto value = parse_digits(text.substr(0, n));
  if (!value) return std::nullopt;
  const std::string_view unit = text.substr(n);
  uint64_t ms_per_unit = 0;
  if (unit == "ms") ms_per_unit = 1;
  else if (unit == "s") ms_per_unit = 1000;
  else if (unit == "m") ms_per_unit = 60 * 1000;
  else if (unit == "h") ms_per_unit = 60 * 60 * 1000;
  else if (unit.empty() && *value == 0) return Duration{0};  // a bare number means nothing else
  else return std::nullopt;
  if (*value > kMaxMs / ms_per_unit) return std::nullopt;
  return Duration{static_cast<int64_t>(*value * ms_per_unit)};
}

std::optional<uint64_t> parse_size(std::string_view text) {
  const size_t n = leading_digits(text);
  auto value = parse_digits(text.substr(0, n));
  if (!value) return std::nullopt;
  const std::string_view unit = text.substr(n);
  uint64_t bytes_per_unit = 0;
  if (unit.empty()) bytes_per_unit = 1;
  else if (unit == "KiB") bytes_per_unit = uint64_t{1} << 10;
  else if (unit == "MiB") bytes_per_unit = uint64_t{1} << 20;
  else if (unit == "GiB") bytes_per_unit = uint64_t{1} << 30;
  else return std::nullopt;
  if (*value > std::numeric_limits<uint64_t>::max() / bytes_per_unit) return std::nullopt;
  return *value * bytes_per_unit;
}

std::optional<std::pair<uint16_t, uint16_t>> parse_status_range(std::string_view s) {
  const auto dash = s.find('-');
  const std::string_view lo_text = s.substr(0, dash);
  const std::string_view hi_text = dash == std::string_view::npos ? lo_text : s.substr(dash + 1);
  if (lo_text.size() != 3 || hi_text.size() != 3) return std::nullopt;
  auto lo = parse_digits(lo_text);
  auto hi = parse_digits(hi_text);
  if (!lo || !hi || *lo < 100 || *hi > 599 || *lo > *hi) return std::nullopt;
  return std::pair{static_cast<uint16_t>(*lo), static_cast<uint16_t>(*hi)};
}

}  // namespace sag::config
