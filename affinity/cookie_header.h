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

// RFC 6265 cookie-name token check, for config validation.
bool is_cookie_token(std::string_view name);

}  // namespace sag::affinity
