#include "session/http2/head_list.h"

#include <cctype>
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
  for (size_t i = at; i < text_.size(); ++i)
    text_[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(text_[i])));
  text_.append(value);
  spans_.push_back({at, name.size(), value.size()});
}

const nghttp2_nv* HeadList::nva() {
  nva_.clear();
  auto* base = reinterpret_cast<uint8_t*>(text_.data());
  for (const Span& sp : spans_)
    nva_.push_back({base + sp.at, base + sp.at + sp.name, sp.name, sp.value, NGHTTP2_NV_FLAG_NONE});
  return nva_.data();
}

}  // namespace sag::session
