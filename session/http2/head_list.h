// A response head as nghttp2 takes it, built in buffers reused from one
// stream to the next. The list is submitted with NGHTTP2_NV_FLAG_NO_COPY_*:
// nghttp2 keeps pointers into it instead of copying (and lowercasing) every
// name and value, so it must stay as it is until the HEADERS frame was sent
// or dropped. Each stream object has its own list for that reason, given
// back once the HEADERS frame was made, or nghttp2 closed the stream (a
// closed stream's queued HEADERS is dropped unread).
//
// Names of known fields point into a static table of lowercase names;
// other names and every value are copied into the list's own text.
//
// Thread: the connection's worker.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/field.hpp>

#include "config/base/block_cache.h"

namespace sag::session {

// The lowercase name of a known field ("content-type"); empty for
// field::unknown. Static storage.
std::string_view lowercase_name(boost::beast::http::field f);

class HeadList {
 public:
  HeadList() = default;
  ~HeadList() { release(); }
  HeadList(const HeadList&) = delete;
  HeadList& operator=(const HeadList&) = delete;

  // Starts a new head with its :status.
  void start(unsigned status);
  // `name` is lowercased (HTTP/2 field names are lowercase); `known` is its
  // field enum when the caller has it (field::unknown otherwise).
  void add(std::string_view name, std::string_view value,
           boost::beast::http::field known = boost::beast::http::field::unknown);
  // Adds each "Name: value\r\n" line of `lines` (as the gateway's own
  // answers carry extra fields); a line without a colon is skipped.
  void add_lines(std::string_view lines);
  // Starts the head of the gateway's own answer: `status`, a plain-text
  // body of `body_size` bytes not to be cached, then `extra_lines` (as
  // add_lines).
  void start_answer(unsigned status, size_t body_size, std::string_view extra_lines);
  // The list, flagged not to be copied; valid until the next start() or
  // add(), and its strings until the next start().
  const nghttp2_nv* nva() const { return nva_.data(); }
  size_t size() const { return nva_.size(); }
  // Gives the storage back to the worker's block cache (nghttp2 holds no
  // pointer into it any more); the next start() takes it afresh, from
  // memory just used, rather than from a stream object's own buffers that
  // have long gone cold.
  void release() noexcept;

 private:
  // `n` bytes more of text_. When text_ has to move, grow() points the
  // entries already made at the new copy.
  char* room(size_t n) {
    if (cap_ - used_ < n) grow(n);
    char* at = text_ + used_;
    used_ += n;
    return at;
  }
  void grow(size_t n);
  static constexpr size_t kUsualFields = 16;  // entries (a response head's, and :status)
  static constexpr size_t kUsualText = 512;   // bytes of names and values
  void push(const char* name, size_t name_len, const char* value, size_t value_len);

  // Names and values, back to back, in a block of the cache (cap_ bytes;
  // kept from head to head until release()).
  char* text_ = nullptr;
  size_t used_ = 0;
  size_t cap_ = 0;
  // The list itself, one array written once per head (no second list to
  // convert from: a stream's head is cold memory by the time it is built).
  std::vector<nghttp2_nv, base::PoolAllocator<nghttp2_nv>> nva_;
};

}  // namespace sag::session
