// HeaderFields: the header fields of one HTTP message, held flat. A drop-in
// for Beast's basic_fields as the Fields of http::message (its public
// interface as the request path uses it, and the Fields concept Beast's
// message and serializer need), built for a proxy's pattern: a head is
// parsed once, looked up a few times by known name, gets a few fields
// added or removed, and is written out once in order.
//
// Why not basic_fields: each field there is a separate allocation linked
// into a list and a red-black tree ordered by case-insensitive name, so a
// head of a dozen fields cost about 5,000 instructions to build and index
// (profile of issue 12). Here the fields are one array of entries in
// insertion order, and names and values are copied into a few blocks from
// the worker's block cache; lookups by field enum are a scan of a dozen
// small entries.
//
// Semantics kept from basic_fields: names keep the case they were given;
// values are stored without leading and trailing blanks; set() removes
// every field of that name and appends one; equal_range() visits the
// fields of one name in order. Unlike basic_fields: a field is always
// appended (basic_fields files it after the last field of its name), so a
// head goes out in the order it came in; and iterators are invalidated by
// insert() and set() (erase() returns the next one).
//
// Not thread-safe; allocation-free in steady state (the worker's block
// cache).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/optional/optional.hpp>

#include "config/base/block_cache.h"

namespace sag::session {

// The field enum of a header name, as Beast's string_to_field, with the
// names every exchange carries looked up first (Beast hashes all 350).
boost::beast::http::field field_of(std::string_view name);

class HeaderFields {
 public:
  using field = boost::beast::http::field;

  class value_type {
   public:
    field name() const noexcept { return field_; }
    std::string_view name_string() const noexcept { return name_; }
    std::string_view value() const noexcept { return value_; }
    // The field as it is written out: "Name: value\r\n" (stored so, so
    // writing a head copies one span per field).
    std::string_view line() const noexcept {
      return {name_.data(), name_.size() + 2 + value_.size() + 2};
    }

   private:
    friend class HeaderFields;
    std::string_view name_;   // into the line
    std::string_view value_;  // into the line
    field field_ = field::unknown;
    bool dead_ = false;  // erased; skipped by iteration
  };

  // Visits live fields in order; from equal_range(), only those of one name.
  class const_iterator {
   public:
    using value_type = HeaderFields::value_type;
    using reference = const value_type&;
    using pointer = const value_type*;
    using difference_type = std::ptrdiff_t;
    using iterator_category = std::forward_iterator_tag;

    const_iterator() = default;
    reference operator*() const { return *p_; }
    pointer operator->() const { return p_; }
    const_iterator& operator++() {
      ++p_;
      skip();
      return *this;
    }
    const_iterator operator++(int) {
      auto old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) { return a.p_ == b.p_; }

   private:
    friend class HeaderFields;
    const_iterator(const value_type* p, const value_type* end, field f, std::string_view name,
                   bool filtered)
        : p_(p), end_(end), f_(f), name_(name), filtered_(filtered) {
      skip();
    }
    void skip() {
      if (!filtered_) {
        while (p_ != end_ && p_->dead_) ++p_;
      } else if (f_ != field::unknown) {
        while (p_ != end_ && (p_->dead_ || p_->field_ != f_)) ++p_;
      } else {
        skip_by_name();
      }
    }
    void skip_by_name();

    const value_type* p_ = nullptr;
    const value_type* end_ = nullptr;
    field f_ = field::unknown;
    std::string_view name_;
    bool filtered_ = false;
  };
  using iterator = const_iterator;

  // Renders the head (start line, fields, empty line) for Beast's
  // serializer, into a block of its own.
  class writer {
   public:
    using const_buffers_type = boost::asio::const_buffer;
    writer(const HeaderFields& f, unsigned version, boost::beast::http::verb method);
    writer(const HeaderFields& f, unsigned version, unsigned status);
    const_buffers_type get() const { return {text_.data(), text_.size()}; }

   private:
    std::basic_string<char, std::char_traits<char>, base::PoolAllocator<char>> text_;
  };

  HeaderFields() = default;
  ~HeaderFields() { release(); }
  HeaderFields(HeaderFields&& o) noexcept;
  HeaderFields& operator=(HeaderFields&& o) noexcept;
  HeaderFields(const HeaderFields& o);
  HeaderFields& operator=(const HeaderFields& o);

  const_iterator begin() const { return make(false, field::unknown, {}); }
  const_iterator end() const { return {end_ptr(), end_ptr(), field::unknown, {}, false}; }
  bool empty() const { return begin() == end(); }

  const_iterator find(field f) const;
  const_iterator find(std::string_view name) const;
  std::size_t count(field f) const;
  std::size_t count(std::string_view name) const;
  std::pair<const_iterator, const_iterator> equal_range(field f) const {
    return {make(true, f, {}), end()};
  }
  std::pair<const_iterator, const_iterator> equal_range(std::string_view name) const;
  // The first value of that name, or empty.
  std::string_view operator[](field f) const;
  std::string_view operator[](std::string_view name) const;

  void insert(field f, std::string_view value);
  void insert(std::string_view name, std::string_view value);
  void insert(field f, std::string_view name, std::string_view value);
  void set(field f, std::string_view value);
  void set(std::string_view name, std::string_view value);
  std::size_t erase(field f);
  std::size_t erase(std::string_view name);
  const_iterator erase(const_iterator pos);
  void clear() { release(); }

  // For a parser that files fields as it finds them in its input and copies
  // the input once when the head is complete: append_stored() files a field
  // whose "Name: value\r\n" line lies in the input (`name` and `value` are
  // views of it, `value` right after ": ", the CRLF right after `value`);
  // adopt_input() copies `input` into the storage and points the fields
  // that lie in it at the copy. Until then those fields refer to the input.
  void append_stored(field f, std::string_view name, std::string_view value) {
    if (entries_.size() == entries_.capacity()) grow();
    value_type& v = entries_.emplace_back();
    v.name_ = name;
    v.value_ = value;
    v.field_ = f;
    if (f == field::unknown) {
      unknown_ |= unknown_bit(name.size());
    } else {
      known_ |= known_bit(f);
    }
  }

  // False when no live field `f` (not unknown) is present; true when one
  // may be. Every lookup by enum asks first, so a field a head lacks costs
  // no scan; passes over every field ask before they start.
  bool may_have(field f) const { return (known_ & known_bit(f)) != 0; }
  // The same for fields whose names Beast has no enum for, by name length.
  bool may_have_unknown(std::size_t name_size) const {
    return (unknown_ & unknown_bit(name_size)) != 0;
  }
  void adopt_input(std::string_view input);

 protected:
  // The Fields concept's hooks for http::header / http::message.
  std::string_view get_method_impl() const { return method_; }
  std::string_view get_target_impl() const { return target_; }
  std::string_view get_reason_impl() const { return reason_; }
  bool get_chunked_impl() const;
  bool get_keep_alive_impl(unsigned version) const;
  bool has_content_length_impl() const { return count(field::content_length) > 0; }
  void set_method_impl(std::string_view s) { method_ = store(s); }
  void set_target_impl(std::string_view s) { target_ = store(s); }
  void set_reason_impl(std::string_view s) { reason_ = store(s); }
  void set_chunked_impl(bool value);
  void set_content_length_impl(const boost::optional<std::uint64_t>& value);
  void set_keep_alive_impl(unsigned version, bool keep_alive);

 private:
  // Text storage: a chain of blocks from the block cache; what is stored
  // never moves, so entries hold string_views into it.
  struct Block {
    Block* next;
    std::uint32_t size;  // bytes after the header
    std::uint32_t used;
  };
  using Entries = std::vector<value_type, base::PoolAllocator<value_type>>;

  const_iterator make(bool filtered, field f, std::string_view name) const {
    if (filtered && !(f == field::unknown ? may_have_unknown(name.size()) : may_have(f)))
      return end();
    return {entries_.data(), end_ptr(), f, name, filtered};
  }
  // Bloom-style presence bits: a field sets the bit of its enum (mod 64),
  // or, without one, of its name's length (mod 32); erasing clears none, so
  // a clear bit proves absence and a set one only says "maybe".
  static std::uint64_t known_bit(field f) {
    return std::uint64_t{1} << (static_cast<unsigned>(f) & 63);
  }
  static std::uint32_t unknown_bit(std::size_t name_size) {
    return std::uint32_t{1} << (name_size & 31);
  }
  const value_type* end_ptr() const { return entries_.data() + entries_.size(); }
  // `n` bytes in the blocks, never moved afterwards. Inline: every stored
  // field and copied head comes through here, nearly always into room the
  // newest block has.
  char* reserve(std::size_t n) {
    Block* b = blocks_;
    if (b == nullptr || b->size - b->used < n) return new_block(n);
    char* at = reinterpret_cast<char*>(b + 1) + b->used;
    b->used += static_cast<std::uint32_t>(n);
    return at;
  }
  // A new newest block with room for `n` bytes, the first `n` of them taken.
  char* new_block(std::size_t n);
  // Room for more entries (16 at first, then twice as many).
  void grow();
  // Copies `s` into the blocks (empty views stay empty).
  std::string_view store(std::string_view s);
  // Appends the field; `value` is already trimmed.
  void append(field f, std::string_view name, std::string_view value);
  // Marks dead the live fields same-named as (f, name); returns how many.
  std::size_t erase_matching(field f, std::string_view name);
  void release() noexcept;
  void copy_from(const HeaderFields& o);

  Entries entries_;
  std::uint64_t known_ = 0;    // presence bits (make())
  std::uint32_t unknown_ = 0;
  Block* blocks_ = nullptr;  // newest first
  std::string_view method_;
  std::string_view target_;
  std::string_view reason_;
};

}  // namespace sag::session
