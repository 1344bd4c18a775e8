#include "session/http2/head_list.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

#include "config/base/copy_short.h"

namespace sag::session {
namespace http = boost::beast::http;

namespace {

// HTTP/2 field names are lower case (RFC 9113 §8.2.1): ASCII only, inline
// (std::tolower is a locale-aware call per byte).
void lowercase(char* p, size_t n) {
  for (char* end = p + n; p != end; ++p)
    if (static_cast<unsigned char>(*p - 'A') < 26) *p = static_cast<char>(*p + ('a' - 'A'));
}

// Beast's field enum is dense (unknown = 0 up to its last name).
constexpr size_t kFields = static_cast<size_t>(http::field::xref) + 1;

struct LowerNames {
  LowerNames() {
    for (size_t i = 1; i < kFields; ++i) {
      const auto name = http::to_string(static_cast<http::field>(i));
      names[i].assign(name.data(), name.size());
      lowercase(names[i].data(), names[i].size());
    }
  }
  std::array<std::string, kFields> names;
};

const LowerNames& lower_names() {
  static const LowerNames table;
  return table;
}

}  // namespace

std::string_view lowercase_name(http::field f) {
  const auto i = static_cast<size_t>(f);
  return i < kFields ? std::string_view(lower_names().names[i]) : std::string_view();
}

void HeadList::grow(size_t n) {
  const size_t cap = std::max({kUsualText, 2 * cap_, used_ + n});
  char* text = base::PoolAllocator<char>{}.allocate(cap);
  if (used_ > 0) std::memcpy(text, text_, used_);
  // Entries pointing into the old text (an empty value may point at its
  // end) point into the copy; static names lie outside it and stay.
  const auto from = reinterpret_cast<std::uintptr_t>(text_);
  auto rebase = [&](uint8_t*& p) {
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    if (at >= from && at <= from + used_) p = reinterpret_cast<uint8_t*>(text + (at - from));
  };
  for (nghttp2_nv& nv : nva_) {
    rebase(nv.name);
    rebase(nv.value);
  }
  if (text_) base::PoolAllocator<char>{}.deallocate(text_, cap_);
  text_ = text;
  cap_ = cap;
}

void HeadList::start_answer(unsigned status, size_t body_size, std::string_view extra_lines) {
  char length[24];
  auto [end, ec] = std::to_chars(length, length + sizeof length, body_size);
  start(status);
  add("content-type", "text/plain", boost::beast::http::field::content_type);
  add("cache-control", "no-store", boost::beast::http::field::cache_control);
  add("content-length", std::string_view(length, end - length),
      boost::beast::http::field::content_length);
  add_lines(extra_lines);
}

void HeadList::release() noexcept {
  if (text_) base::PoolAllocator<char>{}.deallocate(text_, cap_);
  text_ = nullptr;
  cap_ = used_ = 0;
  decltype(nva_)().swap(nva_);
}

void HeadList::push(const char* name, size_t name_len, const char* value, size_t value_len) {
  constexpr uint8_t kFlags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  // (nghttp2 takes non-const pointers but, with NO_COPY, only reads them.)
  nva_.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(value)), name_len, value_len,
                  kFlags});
}

void HeadList::start(unsigned status) {
  used_ = 0;
  nva_.clear();
  // After release(): room for a usual head at once, not grown step by step.
  if (nva_.capacity() == 0) nva_.reserve(kUsualFields);
  if (cap_ == 0) grow(kUsualText);
  char code[8];
  auto [end, ec] = std::to_chars(code, code + sizeof code, status);
  const size_t n = static_cast<size_t>(end - code);
  char* at = room(n);
  std::memcpy(at, code, n);
  push(":status", 7, at, n);
}

void HeadList::add(std::string_view name, std::string_view value, http::field known) {
  const std::string_view fixed = known == http::field::unknown ? std::string_view() : lowercase_name(known);
  const bool copy_name = name.empty() || fixed.size() != name.size();
  const size_t name_off = used_;
  if (copy_name) {
    char* at = room(name.size());
    base::copy_short(at, name.data(), name.size());
    lowercase(at, name.size());
  }
  char* value_at = room(value.size());
  base::copy_short(value_at, value.data(), value.size());
  // (Read after the value's room: that may have moved the text.)
  push(copy_name ? text_ + name_off : fixed.data(), name.size(), value_at, value.size());
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

}  // namespace sag::session
