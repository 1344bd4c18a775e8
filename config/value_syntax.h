// Which characters a configured text may hold, by where the text ends up:
// names in URLs, logs and metric labels; cookie names; cookie attributes;
// values written verbatim into request lines and headers.
#pragma once

#include <string_view>

namespace sag::config {

// Names end up in admin URL paths, log fields and metric labels, so they keep
// to HAProxy's set of characters for proxy and server names.
bool valid_name(std::string_view s);
inline constexpr const char* kNameHint = " (use letters, digits, '-', '_', '.', ':'; at most 64)";

// RFC 6265 cookie-name = token (RFC 9110 tchar).
bool valid_token(std::string_view s);
inline constexpr const char* kTokenHint = " (RFC 6265: letters, digits and !#$%&'*+-.^_`|~)";

// Cookie attribute values (Path, Domain) must not end the attribute early.
bool valid_attribute_value(std::string_view s);

// Visible ASCII only: these values go verbatim into request lines and headers.
bool visible_ascii(std::string_view s);

}  // namespace sag::config
