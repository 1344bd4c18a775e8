#include "config/base/token_list.h"

namespace sag::base {

bool next_token(std::string_view& rest, std::string_view& token) {
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    token = trim_blanks(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (!token.empty()) return true;
  }
  return false;
}

bool has_token(std::string_view list, std::string_view name) {
  for (std::string_view t; next_token(list, t);)
    if (iequals_ascii(t.substr(0, t.find_first_of(" \t=")), name)) return true;
  return false;
}

}  // namespace sag::base
