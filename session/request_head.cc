#include "session/request_head.h"

#include "config/base/token_list.h"
#include "session/http_chars.h"

#include <cstring>

namespace sag::session {
namespace {

bool iequals(std::string_view a, std::string_view b) { return base::iequals_ascii(a, b); }
std::string_view trim(std::string_view s) { return base::trim_blanks(s); }

HeadScan error(unsigned status, const char* reason) {
  HeadScan r;
  r.state = HeadScan::State::kError;
  r.status = status;
  r.reason = reason;
  return r;
}

// Finds the end of the line starting at `pos`: the index of its CR (line ends
// in CRLF). Returns npos when the line is not complete yet; sets `bad` on a
// bare LF or a CR not followed by LF.
size_t line_end(std::string_view d, size_t pos, bool& bad) {
  for (size_t i = pos; i < d.size(); ++i) {
    if (d[i] == '\n') {
      bad = true;  // LF without CR
      return i;
    }
    if (d[i] == '\r') {
      if (i + 1 >= d.size()) return std::string_view::npos;
      if (d[i + 1] != '\n') bad = true;
      return i;
    }
  }
  return std::string_view::npos;
}

}  // namespace

size_t leading_empty_lines(std::string_view data) {
  size_t i = 0;
  while (i < data.size()) {
    if (data[i] == '\n') {
      ++i;
    } else if (data[i] == '\r' && i + 1 < data.size() && data[i + 1] == '\n') {
      i += 2;
    } else {
      break;
    }
  }
  return i;
}

HeadScan scan_request_head(std::string_view d, const HeadLimits& limits) {
  // Request line: method SP request-target SP HTTP-version.
  bool bad = false;
  size_t eol = line_end(d, 0, bad);
  if (eol == std::string_view::npos) {
    // A final CR may be the start of the line's CRLF: not part of the line.
    const size_t so_far = d.size() - (!d.empty() && d.back() == '\r' ? 1 : 0);
    if (so_far > limits.max_request_line) return error(414, "request line too long");
    if (d.size() > limits.max_header_bytes) return error(431, "request header too large");
    return {};
  }
  if (bad) return error(400, "bad line ending");
  if (eol > limits.max_request_line) return error(414, "request line too long");
  std::string_view line = d.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      sp2 == sp1 + 1)
    return error(400, "malformed request line");
  for (size_t i = 0; i < sp1; ++i)
    if (!is_tchar(static_cast<unsigned char>(line[i]))) return error(400, "bad method");
  for (size_t i = sp1 + 1; i < sp2; ++i) {
    unsigned char c = line[i];
    // A fragment is never sent (RFC 9112 §3.2) and raw non-ASCII bytes are
    // not URI characters: servers split or decode either differently.
    if (c <= 0x20 || c == 0x7f || c == '#' || c >= 0x80) return error(400, "bad request target");
  }
  std::string_view version = line.substr(sp2 + 1);
  HeadScan r;
  if (version == "HTTP/1.1") {
    r.http10 = false;
  } else if (version == "HTTP/1.0") {
    r.http10 = true;
  } else {
    return error(400, "unsupported HTTP version");
  }

  // Header fields.
  size_t pos = eol + 2;
  uint32_t count = 0;
  int host_count = 0;
  bool te_seen = false, te_bad = false, te_unknown = false;
  bool chunked_last = false;
  int chunked_count = 0;
  for (;;) {
    bad = false;
    eol = line_end(d, pos, bad);
    if (eol == std::string_view::npos) {
      if (d.size() > limits.max_header_bytes) return error(431, "request header too large");
      return {};
    }
    if (bad) return error(400, "bad line ending");
    if (eol + 2 > limits.max_header_bytes) return error(431, "request header too large");
    if (eol == pos) {  // empty line: end of head
      r.head_length = eol + 2;
      break;
    }
    std::string_view field = d.substr(pos, eol - pos);
    pos = eol + 2;
    if (field[0] == ' ' || field[0] == '\t') return error(400, "obsolete line folding");
    if (++count > limits.max_headers) return error(431, "too many header fields");
    size_t colon = 0;
    while (colon < field.size() && is_tchar(static_cast<unsigned char>(field[colon]))) ++colon;
    if (colon == 0 || colon >= field.size() || field[colon] != ':')
      return error(400, "malformed header field");
    std::string_view name = field.substr(0, colon);
    std::string_view value = field.substr(colon + 1);
    for (unsigned char c : value)
      if (!is_value_byte(c)) return error(400, "invalid byte in header field");
    value = trim(value);

    if (iequals(name, "content-length")) {
      if (value.empty() || value.size() > 18) return error(400, "bad content-length");
      uint64_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return error(400, "bad content-length");
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (r.has_content_length && n != r.content_length)
        return error(400, "conflicting content-length");
      r.has_content_length = true;
      r.content_length = n;
      ++r.content_length_fields;
    } else if (iequals(name, "transfer-encoding")) {
      te_seen = true;
      // A list, possibly over several fields: only a single final "chunked" is
      // accepted; unknown codings are 501, a non-final chunked 400.
      for (std::string_view coding; base::next_token(value, coding);) {
        if (chunked_last) te_bad = true;  // something after chunked
        if (iequals(coding, "chunked")) {
          chunked_last = true;
          ++chunked_count;
        } else {
          // Even a known coding before chunked ("gzip, chunked") would have
          // to survive re-framing toward the server: refused, as nginx does.
          chunked_last = false;
          te_unknown = true;
        }
      }
    } else if (iequals(name, "host")) {
      ++host_count;
    } else if (iequals(name, "expect")) {
      if (iequals(value, "100-continue")) r.expect_continue = true;
    }
  }

  if (te_seen) {
    if (r.http10) return error(400, "transfer-encoding in HTTP/1.0");
    if (r.has_content_length) return error(400, "both content-length and transfer-encoding");
    if (te_bad || !chunked_last || chunked_count != 1)
      return error(400, "transfer-encoding other than a final chunked");
    if (te_unknown) return error(501, "unknown transfer coding");
    r.chunked = true;
  }
  if (host_count > 1) return error(400, "duplicate host");
  if (host_count == 0 && !r.http10) return error(400, "missing host");
  r.state = HeadScan::State::kComplete;
  return r;
}

}  // namespace sag::session
