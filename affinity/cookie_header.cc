#include "affinity/cookie_header.h"

namespace sag::affinity {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(pair, name, value) for each ';'-separated pair; stops when f returns false.
template <typename F>
void for_each_pair(std::string_view header, F&& f) {
  while (!header.empty()) {
    auto semi = header.find(';');
    std::string_view pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string_view n = trim(pair.substr(0, eq));
    std::string_view v = eq == std::string_view::npos ? std::string_view{} : trim(pair.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (!f(pair, n, v, eq != std::string_view::npos)) return;
  }
}

}  // namespace

std::optional<std::string_view> find_cookie(std::string_view header, std::string_view name) {
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

}  // namespace sag::affinity
