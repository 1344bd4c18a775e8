// Reading and editing Cookie request headers ("a=1; SRV=x; b=2") without
// allocating on the read path. Only the cookie named is touched; every other
// pair is kept byte for byte, in order.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sag::affinity {

// The value of the first `name` pair in a Cookie header value, if any.
std::optional<std::string_view> find_cookie(std::string_view header, std::string_view name);

// Writes `header` without any `name` pair into `out` (replacing its
// contents) and returns true when something was removed. `out` is empty when
// nothing else is left.
bool remove_cookie(std::string_view header, std::string_view name, std::string& out);

// Writes `header` with the value of the first `name` pair replaced by
// `value` into `out`; other pairs kept byte for byte. False (and `out`
// untouched) when there is no such pair.
bool replace_cookie_value(std::string_view header, std::string_view name, std::string_view value,
                          std::string& out);

// RFC 6265 cookie-name token check, for config validation.
bool is_cookie_token(std::string_view name);

// One Set-Cookie response field, as far as persistence needs it.
struct SetCookie {
  std::string_view name;
  std::string_view value;         // quotes removed
  size_t value_offset = 0;        // where the value (with any quotes) starts in the field
  size_t value_length = 0;        // and how long it is there
  bool clears = false;            // Max-Age <= 0, or Expires in the past
};

// Parses a Set-Cookie field value; nullopt when it has no name=value pair.
// `now` (Unix seconds) decides whether Expires lies in the past. Views point
// into `field`.
std::optional<SetCookie> parse_set_cookie(std::string_view field, int64_t now);

// `field` with the cookie's value replaced by `value` (attributes kept).
std::string with_cookie_value(std::string_view field, const SetCookie& parsed,
                              std::string_view value);

}  // namespace sag::affinity
