#include "session/header_fields.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <charconv>
#include <cstdint>
#include <cstring>

#include <boost/beast/http/status.hpp>

#include "config/base/copy_short.h"
#include "config/base/token_list.h"
#include "session/head_writer.h"
#include "session/http_chars.h"

namespace sag::session {
namespace http = boost::beast::http;

namespace {

using base::copy_short;

constexpr std::uint32_t kFirstBlock = 512;
constexpr std::uint32_t kLargestGrowth = 4096;

bool iequals(std::string_view a, std::string_view b) { return base::iequals_ascii(a, b); }

// A field's name as a lookup sees it: its enum when it has one.
bool same_name(const HeaderFields::value_type& v, http::field f, std::string_view name) {
  if (f != http::field::unknown) return v.name() == f;
  return iequals(v.name_string(), name);
}

// The tokens of a comma list without those equal to `drop_a` or `drop_b`,
// joined by ", ", into `out`.
void filter_tokens(std::string_view list, std::string_view drop_a, std::string_view drop_b,
                   std::string& out) {
  for (std::string_view token; base::next_token(list, token);) {
    if (iequals(token, drop_a) || iequals(token, drop_b)) continue;
    if (!out.empty()) out += ", ";
    out += token;
  }
}


// Every name Beast has an enum for, lowercase, in an open-addressed table
// of 2,048 slots (a sixth full) keyed by a hash of the name's length and its
// first and last eight bytes, case folded: a lookup is the hash, one probe
// (rarely two) and one comparison, for any name. Beast's own lookup hashes
// every byte of the name four at a time and divides (before this table, the
// names every exchange carries were scanned for first, and any other name
// paid for both).
class FieldTable {
 public:
  FieldTable() {
    constexpr auto kLast = static_cast<unsigned>(http::field::xref);
    for (unsigned i = 1; i <= kLast; ++i) {
      const std::string_view name = http::to_string(static_cast<http::field>(i));
      Slot slot{static_cast<uint16_t>(i), static_cast<uint16_t>(name.size()),
                static_cast<uint32_t>(names_.size())};
      for (char c : name) names_.push_back(static_cast<char>(c | 0x20));
      size_t at = hash(name);
      while (slots_[at].field != 0) at = (at + 1) & (kSlots - 1);
      slots_[at] = slot;
    }
  }

  http::field find(std::string_view name) const {
    for (size_t at = hash(name);; at = (at + 1) & (kSlots - 1)) {
      const Slot& slot = slots_[at];
      if (slot.field == 0) return http::field::unknown;
      if (slot.size == name.size() &&
          equals_lowercase(name, {names_.data() + slot.name_at, slot.size}))
        return static_cast<http::field>(slot.field);
    }
  }

 private:
  struct Slot {
    uint16_t field = 0;  // the enum; 0: an empty slot
    uint16_t size = 0;   // of the name
    uint32_t name_at = 0;  // in names_
  };
  static constexpr unsigned kSlotBits = 11;
  static constexpr size_t kSlots = size_t{1} << kSlotBits;
  static_assert(static_cast<size_t>(http::field::xref) * 4 < kSlots,
                "keep the table sparse: probes stay short");

  // The name's first and last eight bytes (four, or its bytes, when
  // shorter), case folded as equals_lowercase folds them (OR 0x20), so a name
  // and its lowercase hash alike. Fixed-size loads only: no memcpy call.
  static size_t hash(std::string_view name) {
    const char* p = name.data();
    const size_t n = name.size();
    uint64_t head, tail;
    if (n >= 8) {
      std::memcpy(&head, p, 8);
      std::memcpy(&tail, p + n - 8, 8);
    } else if (n >= 4) {
      uint32_t a, b;
      std::memcpy(&a, p, 4);
      std::memcpy(&b, p + n - 4, 4);
      head = a;
      tail = b;
    } else {
      head = static_cast<unsigned char>(p[0]) | static_cast<unsigned char>(p[n / 2]) << 8;
      tail = static_cast<unsigned char>(p[n - 1]);
    }
    constexpr uint64_t kFold = 0x2020202020202020ull;
    const uint64_t x = (head | kFold) * 0x9e3779b97f4a7c15ull ^
                       (tail | kFold) * 0xc2b2ae3d27d4eb4full ^ n * 0x165667b19e3779f9ull;
    return static_cast<size_t>(x >> (64 - kSlotBits));  // the product's best-mixed bits
  }

  std::array<Slot, kSlots> slots_{};
  std::string names_;  // every name, lowercase, back to back
};

}  // namespace

http::field field_of(std::string_view name) {
  static const FieldTable table;
  if (name.empty()) return http::field::unknown;
  return table.find(name);
}

void HeaderFields::const_iterator::skip_by_name() {
  while (p_ != end_ && (p_->dead_ || !same_name(*p_, f_, name_))) ++p_;
}

// ---- storage ---------------------------------------------------------------

char* HeaderFields::new_block(std::size_t n) {
  Block* b = blocks_;
  std::uint32_t size = b == nullptr ? kFirstBlock : std::min(b->size * 2, kLargestGrowth);
  size = std::max<std::uint32_t>(size, static_cast<std::uint32_t>(n));
  auto* raw = base::PoolAllocator<char>{}.allocate(sizeof(Block) + size);
  b = new (raw) Block{blocks_, size, static_cast<std::uint32_t>(n)};
  blocks_ = b;
  return reinterpret_cast<char*>(b + 1);
}

std::string_view HeaderFields::store(std::string_view s) {
  if (s.empty()) return {};
  char* at = reserve(s.size());
  copy_short(at, s.data(), s.size());
  return {at, s.size()};
}

void HeaderFields::release() noexcept {
  while (blocks_ != nullptr) {
    Block* next = blocks_->next;
    base::PoolAllocator<char>{}.deallocate(reinterpret_cast<char*>(blocks_),
                                           sizeof(Block) + blocks_->size);
    blocks_ = next;
  }
  Entries().swap(entries_);
  known_ = 0;
  unknown_ = 0;
  method_ = target_ = reason_ = {};
}

HeaderFields::HeaderFields(HeaderFields&& o) noexcept
    : entries_(std::move(o.entries_)),
      known_(std::exchange(o.known_, 0)),
      unknown_(std::exchange(o.unknown_, 0)),
      blocks_(std::exchange(o.blocks_, nullptr)),
      method_(std::exchange(o.method_, {})),
      target_(std::exchange(o.target_, {})),
      reason_(std::exchange(o.reason_, {})) {
  o.entries_.clear();
}

HeaderFields& HeaderFields::operator=(HeaderFields&& o) noexcept {
  if (this == &o) return *this;
  release();
  entries_ = std::move(o.entries_);
  o.entries_.clear();
  known_ = std::exchange(o.known_, 0);
  unknown_ = std::exchange(o.unknown_, 0);
  blocks_ = std::exchange(o.blocks_, nullptr);
  method_ = std::exchange(o.method_, {});
  target_ = std::exchange(o.target_, {});
  reason_ = std::exchange(o.reason_, {});
  return *this;
}

HeaderFields::HeaderFields(const HeaderFields& o) { copy_from(o); }

HeaderFields& HeaderFields::operator=(const HeaderFields& o) {
  if (this != &o) {
    release();
    copy_from(o);
  }
  return *this;
}

void HeaderFields::copy_from(const HeaderFields& o) {
  for (const auto& v : o) append(v.name(), v.name_string(), v.value());
  method_ = store(o.method_);
  target_ = store(o.target_);
  reason_ = store(o.reason_);
}

// ---- lookup ----------------------------------------------------------------

HeaderFields::const_iterator HeaderFields::find(field f) const {
  const_iterator it = make(true, f, {});
  return {it.p_, end_ptr(), field::unknown, {}, false};
}

HeaderFields::const_iterator HeaderFields::find(std::string_view name) const {
  const_iterator it = make(true, field_of(name), name);
  return {it.p_, end_ptr(), field::unknown, {}, false};
}

std::size_t HeaderFields::count(field f) const {
  const auto [first, last] = equal_range(f);
  return static_cast<std::size_t>(std::distance(first, last));
}

std::size_t HeaderFields::count(std::string_view name) const {
  const auto [first, last] = equal_range(name);
  return static_cast<std::size_t>(std::distance(first, last));
}

std::pair<HeaderFields::const_iterator, HeaderFields::const_iterator> HeaderFields::equal_range(
    std::string_view name) const {
  return {make(true, field_of(name), name), end()};
}

std::string_view HeaderFields::operator[](field f) const {
  if (f == field::unknown || !may_have(f)) return {};  // (unknown: by name only)
  for (const value_type* p = entries_.data(), *end = end_ptr(); p != end; ++p)
    if (p->field_ == f && !p->dead_) return p->value_;
  return {};
}

std::string_view HeaderFields::operator[](std::string_view name) const {
  const auto it = find(name);
  return it == end() ? std::string_view() : it->value();
}

// ---- changes ---------------------------------------------------------------

void HeaderFields::append(field f, std::string_view name, std::string_view value) {
  // One span "Name: value\r\n", as the head is written.
  const size_t size = name.size() + 2 + value.size() + 2;
  char* at = reserve(size);
  copy_short(at, name.data(), name.size());
  std::memcpy(at + name.size(), ": ", 2);
  copy_short(at + name.size() + 2, value.data(), value.size());
  std::memcpy(at + size - 2, "\r\n", 2);
  append_stored(f, {at, name.size()}, {at + name.size() + 2, value.size()});
}

void HeaderFields::grow() {
  entries_.reserve(std::max<size_t>(16, 2 * entries_.capacity()));
}

void HeaderFields::adopt_input(std::string_view input) {
  if (input.empty()) return;
  char* copy = reserve(input.size());
  std::memcpy(copy, input.data(), input.size());
  const char* from = input.data();
  const char* end = from + input.size();
  for (auto& v : entries_) {
    // (Compared as addresses: the views point into `input` or into blocks.)
    const auto at = reinterpret_cast<std::uintptr_t>(v.name_.data());
    if (at < reinterpret_cast<std::uintptr_t>(from) || at >= reinterpret_cast<std::uintptr_t>(end))
      continue;
    v.name_ = {copy + (v.name_.data() - from), v.name_.size()};
    v.value_ = {copy + (v.value_.data() - from), v.value_.size()};
  }
}

void HeaderFields::insert(field f, std::string_view value) {
  append(f, http::to_string(f), base::trim_blanks(value));
}

void HeaderFields::insert(std::string_view name, std::string_view value) {
  append(field_of(name), name, base::trim_blanks(value));
}

void HeaderFields::insert(field f, std::string_view name, std::string_view value) {
  append(f, name, base::trim_blanks(value));
}

void HeaderFields::set(field f, std::string_view value) {
  erase(f);
  insert(f, value);
}

void HeaderFields::set(std::string_view name, std::string_view value) {
  erase(name);
  insert(name, value);
}

std::size_t HeaderFields::erase(field f) {
  return f == field::unknown ? 0 : erase_matching(f, {});
}

std::size_t HeaderFields::erase(std::string_view name) { return erase_matching(field_of(name), name); }

std::size_t HeaderFields::erase_matching(field f, std::string_view name) {
  std::size_t n = 0;
  for (auto& v : entries_) {
    if (!v.dead_ && same_name(v, f, name)) {
      v.dead_ = true;
      ++n;
    }
  }
  return n;
}

HeaderFields::const_iterator HeaderFields::erase(const_iterator pos) {
  auto& v = entries_[static_cast<std::size_t>(pos.p_ - entries_.data())];
  v.dead_ = true;
  return ++pos;
}

// ---- the Fields concept ----------------------------------------------------

bool HeaderFields::get_chunked_impl() const {
  if (!may_have(field::transfer_encoding)) return false;
  bool chunked = false;
  for (auto [it, last] = equal_range(field::transfer_encoding); it != last; ++it) {
    std::string_view list = it->value();
    for (std::string_view coding; base::next_token(list, coding);)
      chunked = iequals(coding, "chunked");
  }
  return chunked;
}

bool HeaderFields::get_keep_alive_impl(unsigned version) const {
  if (!may_have(field::connection)) return version >= 11;
  bool close = false, keep = false;
  for (auto [it, last] = equal_range(field::connection); it != last; ++it) {
    std::string_view list = it->value();
    for (std::string_view token; base::next_token(list, token);) {
      if (iequals(token, "close")) close = true;
      if (iequals(token, "keep-alive")) keep = true;
    }
  }
  return version >= 11 ? !close : keep && !close;
}

void HeaderFields::set_chunked_impl(bool value) {
  std::string codings;
  for (auto [it, last] = equal_range(field::transfer_encoding); it != last; ++it)
    filter_tokens(it->value(), "chunked", {}, codings);
  if (value) codings += codings.empty() ? "chunked" : ", chunked";
  erase(field::transfer_encoding);
  if (!codings.empty()) insert(field::transfer_encoding, codings);
}

void HeaderFields::set_content_length_impl(const boost::optional<std::uint64_t>& value) {
  erase(field::content_length);
  if (!value) return;
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, *value);
  insert(field::content_length, std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)));
}

void HeaderFields::set_keep_alive_impl(unsigned version, bool keep_alive) {
  std::string tokens;
  for (auto [it, last] = equal_range(field::connection); it != last; ++it)
    filter_tokens(it->value(), "close", "keep-alive", tokens);
  const char* add = version >= 11 ? (keep_alive ? nullptr : "close")
                                  : (keep_alive ? "keep-alive" : nullptr);
  if (add != nullptr) {
    if (!tokens.empty()) tokens += ", ";
    tokens += add;
  }
  erase(field::connection);
  if (!tokens.empty()) insert(field::connection, tokens);
}

// ---- writer ----------------------------------------------------------------

HeaderFields::writer::writer(const HeaderFields& f, unsigned version, http::verb method) {
  const std::string_view m = method == http::verb::unknown
                                 ? f.get_method_impl()
                                 : std::string_view(http::to_string(method));
  text_.resize(head_size_bound(m, f.get_target_impl(), f));
  text_.resize(write_request_head(m, f.get_target_impl(), version, f, text_.data(), text_.size()));
}

HeaderFields::writer::writer(const HeaderFields& f, unsigned version, unsigned status) {
  std::string_view reason = f.get_reason_impl();
  if (reason.empty()) reason = http::obsolete_reason(static_cast<http::status>(status));
  text_.resize(head_size_bound(reason, {}, f));
  text_.resize(write_response_head(status, reason, version, f, text_.data(), text_.size()));
}

}  // namespace sag::session
