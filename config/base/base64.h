// Base64 decoding (RFC 4648 §4, the standard alphabet).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sag::base {

// Strict: the standard alphabet only (base64url's - and _ are refused),
// padding optional but exact when present, leftover bits zero (canonical
// encodings only); nullopt on anything else, whitespace included.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace sag::base
