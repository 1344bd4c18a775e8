#include "affinity/cookie/cookie_header.h"

#include <charconv>
#include <ctime>

#include "config/base/token_list.h"

namespace sag::affinity {
namespace {

using base::trim_blanks;

// Calls f(pair, name, value) for each ';'-separated pair; stops when f returns false.
template <typename F>
void for_each_pair(std::string_view header, F&& f) {
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view pair = trim_blanks(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string_view n = trim_blanks(pair.substr(0, eq));
    std::string_view v =
        eq == std::string_view::npos ? std::string_view{} : trim_blanks(pair.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (!f(pair, n, v, eq != std::string_view::npos)) return;
  }
}

}  // namespace

std::optional<std::string_view> find_cookie(std::string_view header, std::string_view name) {
  // The usual header, one pair and it is the one asked for: no walk.
  if (header.size() > name.size() && header[name.size()] == '=' && header.starts_with(name) &&
      header.find(';', name.size() + 1) == std::string_view::npos) {
    std::string_view v = trim_blanks(header.substr(name.size() + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
  }
  std::optional<std::string_view> found;
  for_each_pair(header, [&](std::string_view, std::string_view n, std::string_view v, bool has_eq) {
    if (has_eq && n == name) {
      found = v;
      return false;
    }
    return true;
  });
  return found;
}

bool remove_cookie(std::string_view header, std::string_view name, std::string& out) {
  out.clear();
  bool removed = false;
  for_each_pair(header, [&](std::string_view pair, std::string_view n, std::string_view, bool has_eq) {
    if (has_eq && n == name) {
      removed = true;
    } else {
      if (!out.empty()) out += "; ";
      out += pair;
    }
    return true;
  });
  return removed;
}

bool replace_cookie_value(std::string_view header, std::string_view name, std::string_view value,
                          std::string& out) {
  bool done = false;
  std::string result;
  for_each_pair(header, [&](std::string_view pair, std::string_view n, std::string_view, bool has_eq) {
    if (!result.empty()) result += "; ";
    if (!done && has_eq && n == name) {
      result += n;
      result += '=';
      result += value;
      done = true;
    } else {
      result += pair;
    }
    return true;
  });
  if (done) out = std::move(result);
  return done;
}

bool is_cookie_token(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f) return false;
    switch (c) {
      case '(': case ')': case '<': case '>': case '@': case ',': case ';': case ':':
      case '\\': case '"': case '/': case '[': case ']': case '?': case '=': case '{':
      case '}':
        return false;
      default:
        break;
    }
  }
  return true;
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

// RFC 6265 §5.1.1 dates as servers send them ("Wed, 21 Oct 2015 07:28:00
// GMT", also with dashes); false when unparsable (then not treated as past).
bool parse_cookie_date(std::string_view text, int64_t& out) {
  char buf[64];
  if (text.size() >= sizeof buf) return false;
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  for (const char* format : {"%a, %d %b %Y %H:%M:%S", "%a, %d-%b-%Y %H:%M:%S", "%a, %d-%b-%y %H:%M:%S",
                             "%A, %d-%b-%y %H:%M:%S"}) {
    std::tm tm{};
    if (strptime(buf, format, &tm) != nullptr) {
      out = static_cast<int64_t>(timegm(&tm));
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<SetCookie> parse_set_cookie(std::string_view field, int64_t now) {
  const size_t semi = field.find(';');
  std::string_view pair = field.substr(0, semi);
  const size_t eq = pair.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  SetCookie c;
  c.name = trim_blanks(pair.substr(0, eq));
  if (c.name.empty()) return std::nullopt;
  std::string_view raw = pair.substr(eq + 1);
  size_t lead = 0;
  while (lead < raw.size() && base::is_blank(raw[lead])) ++lead;
  std::string_view v = trim_blanks(raw);
  c.value_offset = eq + 1 + lead;
  c.value_length = v.size();
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  c.value = v;

  bool has_max_age = false;
  std::string_view attrs = semi == std::string_view::npos ? std::string_view{} : field.substr(semi + 1);
  while (!attrs.empty()) {
    const size_t next = attrs.find(';');
    std::string_view attr = trim_blanks(attrs.substr(0, next));
    attrs = next == std::string_view::npos ? std::string_view{} : attrs.substr(next + 1);
    const size_t aeq = attr.find('=');
    std::string_view key = trim_blanks(attr.substr(0, aeq));
    std::string_view val =
        aeq == std::string_view::npos ? std::string_view{} : trim_blanks(attr.substr(aeq + 1));
    if (iequals(key, "max-age")) {
      // Max-Age wins over Expires (RFC 6265 §5.3 step 3).
      int64_t n = 0;
      bool negative = !val.empty() && val.front() == '-';
      std::string_view digits = negative ? val.substr(1) : val;
      auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
      if (!digits.empty() && ec == std::errc() && ptr == digits.data() + digits.size()) {
        has_max_age = true;
        c.clears = negative || n == 0;
      }
    } else if (iequals(key, "expires") && !has_max_age) {
      int64_t when = 0;
      if (parse_cookie_date(val, when)) c.clears = when <= now;
    }
  }
  return c;
}

std::string with_cookie_value(std::string_view field, const SetCookie& parsed,
                              std::string_view value) {
  std::string out;
  out.reserve(field.size() + value.size());
  out += field.substr(0, parsed.value_offset);
  out += value;
  out += field.substr(parsed.value_offset + parsed.value_length);
  return out;
}

}  // namespace sag::affinity
