#include "session/http2/head_list.h"

#include <charconv>

namespace sag::session {

void HeadList::start(unsigned status) {
  text_.clear();
  spans_.clear();
  char code[8];
  auto [end, ec] = std::to_chars(code, code + sizeof code, status);
  add(":status", std::string_view(code, static_cast<size_t>(end - code)));
}

void HeadList::add(std::string_view name, std::string_view value) {
  const size_t at = text_.size();
  text_.append(name);
  // HTTP/2 field names are lower case (RFC 9113 §8.2.1); ASCII only, and
  // inline (std::tolower is a locale-aware call per byte).
  for (size_t i = at; i < text_.size(); ++i)
    if (text_[i] >= 'A' && text_[i] <= 'Z') text_[i] = static_cast<char>(text_[i] + ('a' - 'A'));
  text_.append(value);
  spans_.push_back({at, name.size(), value.size()});
}

void HeadList::add_lines(std::string_view lines) {
  while (!lines.empty()) {
    const size_t eol = lines.find("\r\n");
    const std::string_view line = lines.substr(0, eol);
    lines = eol == std::string_view::npos ? std::string_view{} : lines.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    add(line.substr(0, colon), value);
  }
}

const nghttp2_nv* HeadList::nva() {
  nva_.clear();
  auto* base = reinterpret_cast<uint8_t*>(text_.data());
  for (const Span& sp : spans_)
    nva_.push_back({base + sp.at, base + sp.at + sp.name, sp.name, sp.value, NGHTTP2_NV_FLAG_NONE});
  return nva_.data();
}

}  // namespace sag::session
