// Strict, allocation-free checks of a raw HTTP/1.1 request head before Beast
// parses it (docs/behaviour.md#request-path). Beast is lenient where a proxy must not be (obs-fold,
// some duplicate framing headers), and a proxy that disagrees with its
// server about where a request ends is a request-smuggling vector: every
// ambiguous shape is refused here, before a byte is forwarded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http/field.hpp>

namespace sag::session {

struct HeadLimits {
  size_t max_header_bytes = 32 * 1024;  // whole head, request line included
  size_t max_request_line = 8 * 1024;
  uint32_t max_headers = 100;
};

struct HeadScan {
  enum class State : uint8_t { kIncomplete, kComplete, kError };
  State state = State::kIncomplete;
  size_t head_length = 0;    // kComplete: bytes up to and including CRLFCRLF
  unsigned status = 0;       // kError: 400, 414, 431 or 501
  const char* reason = "";   // kError: short text for the answer's body
  // kComplete: what the framing checks learned.
  bool http10 = false;
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  uint32_t content_length_fields = 0;  // identical duplicates are one length
  bool expect_continue = false;
};

// Takes a head's parts as the scan checks them, so the request is built in
// the same pass over the bytes (request_fill.h). Every scan that reaches the
// fields calls start() first; end() only for a head that is complete and
// valid. What a scan filed before it ended incomplete or in error is to be
// thrown away. Views point into the scanned data.
class HeadSink {
 public:
  virtual void start(std::string_view method, std::string_view target, bool http10) = 0;
  // One field, in order: `value` trimmed; `stored_form`: the line reads
  // exactly "name: value" (one space, no trailing blanks), CRLF right after.
  virtual void field(boost::beast::http::field f, std::string_view name, std::string_view value,
                     bool stored_form) = 0;
  // `field_lines`: every field line with its CRLF, from the first to the last.
  virtual void end(std::string_view field_lines) = 0;

 protected:
  ~HeadSink() = default;
};

// Scans `data` (the bytes received so far, starting at the request line;
// leading empty lines already skipped). kIncomplete means "read more": it is
// only returned while the limits still allow the head to complete. With a
// sink, the head's parts go to it as they are checked.
HeadScan scan_request_head(std::string_view data, const HeadLimits& limits,
                           HeadSink* sink = nullptr);

// Number of leading CRLF / LF bytes (RFC 9112 §2.2 lets a server skip empty
// lines before a request line, which some clients send after a POST body).
size_t leading_empty_lines(std::string_view data);

// The method and target of a request line recovered from raw bytes (for a
// request refused before it was parsed, so the access log still says what
// was asked); both empty or partial when the bytes hold no such line.
void raw_request_line(std::string_view data, std::string& method, std::string& path);

}  // namespace sag::session
