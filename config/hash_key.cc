#include "config/hash_key.h"

#include <initializer_list>
#include <utility>

#include "config/value_syntax.h"

namespace sag::config {

std::optional<HashKey> HashKey::parse(std::string_view text) {
  if (text == "path") return HashKey{HashSource::kPath, {}};
  if (text == "source") return HashKey{HashSource::kSource, {}};
  for (auto [prefix, source] : {std::pair{std::string_view("header:"), HashSource::kHeader},
                                std::pair{std::string_view("cookie:"), HashSource::kCookie}}) {
    if (!text.starts_with(prefix)) continue;
    const std::string_view name = text.substr(prefix.size());
    if (!valid_token(name)) return std::nullopt;
    return HashKey{source, std::string(name)};
  }
  return std::nullopt;
}

}  // namespace sag::config
