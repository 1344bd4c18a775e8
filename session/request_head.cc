#include "session/request_head.h"

#include "config/base/token_list.h"
#include "session/header_fields.h"
#include "session/http_chars.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

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
  const size_t i = pos + find_cr_or_lf(d.substr(pos));
  if (i == d.size()) return std::string_view::npos;
  if (d[i] == '\n') {
    bad = true;  // LF without CR
    return i;
  }
  if (i + 1 >= d.size()) return std::string_view::npos;
  if (d[i + 1] != '\n') bad = true;
  return i;
}

// The helpers below return std::optional<HeadScan>: nullopt to go on
// scanning, a value to return as the scan's answer (an error, or
// "incomplete"). Checks run in a fixed order, so a head breaking several
// rules always gets the same answer.

// Checks the request line (without its CRLF): method SP request-target SP
// HTTP-version. Returns nullptr when it is good (setting `http10`), else the
// reason for a 400.
const char* request_line_error(std::string_view line, bool& http10) {
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      sp2 == sp1 + 1)
    return "malformed request line";
  for (size_t i = 0; i < sp1; ++i)
    if (!is_tchar(static_cast<unsigned char>(line[i]))) return "bad method";
  for (size_t i = sp1 + 1; i < sp2; ++i) {
    unsigned char c = line[i];
    // A fragment is never sent (RFC 9112 §3.2) and raw non-ASCII bytes are
    // not URI characters: servers split or decode either differently.
    if (c <= 0x20 || c == 0x7f || c == '#' || c >= 0x80) return "bad request target";
  }
  std::string_view version = line.substr(sp2 + 1);
  if (version == "HTTP/1.1") {
    http10 = false;
  } else if (version == "HTTP/1.0") {
    http10 = true;
  } else {
    return "unsupported HTTP version";
  }
  return nullptr;
}

// Finds and checks the request line. On nullopt, `pos` is where the header
// fields start and r.http10 is set. An incomplete line is only "read more"
// while it and the head can still fit their limits.
std::optional<HeadScan> scan_request_line(std::string_view d, const HeadLimits& limits,
                                          HeadScan& r, size_t& pos, HeadSink* sink) {
  bool bad = false;
  const size_t eol = line_end(d, 0, bad);
  if (eol == std::string_view::npos) {
    // A final CR may be the start of the line's CRLF: not part of the line.
    const size_t so_far = d.size() - (!d.empty() && d.back() == '\r' ? 1 : 0);
    if (so_far > limits.max_request_line) return error(414, "request line too long");
    if (d.size() > limits.max_header_bytes) return error(431, "request header too large");
    return HeadScan{};
  }
  if (bad) return error(400, "bad line ending");
  if (eol > limits.max_request_line) return error(414, "request line too long");
  const std::string_view line = d.substr(0, eol);
  if (const char* reason = request_line_error(line, r.http10)) return error(400, reason);
  if (sink) {
    const size_t sp1 = line.find(' ');
    const size_t sp2 = line.find(' ', sp1 + 1);
    sink->start(line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1), r.http10);
  }
  pos = eol + 2;
  return std::nullopt;
}

// What the header fields told about framing and Host, for the final checks.
struct FramingFields {
  int host_count = 0;
  bool te_seen = false;
  bool te_bad = false;      // a coding after "chunked"
  bool te_unknown = false;  // a coding other than "chunked"
  bool chunked_last = false;
  int chunked_count = 0;
};

// Splits a field line into name and value (trimmed): the name a non-empty
// token right before ':', the value only value bytes. `rest`: the line and
// all data after it (its CR stops the token; the bytes after let the name
// be checked 16 at a time). `stored_form`: the line reads "name: value"
// exactly. Returns nullptr when good, else the reason for a 400.
// The value of a field (`raw`: its bytes after the colon, all value bytes)
// trimmed; `stored_form`: one space, then the value to the line's end (an
// empty value: the space alone), so the line is what HeaderFields writes.
void take_value(std::string_view raw, std::string_view& value, bool& stored_form) {
  value = trim(raw);
  stored_form = !raw.empty() && raw[0] == ' ' &&
                (value.empty() ? raw.size() == 1 : value.size() == raw.size() - 1);
}

const char* split_field(std::string_view field, std::string_view rest, std::string_view& name,
                        std::string_view& value, bool& stored_form) {
  const size_t colon = token_length(rest);
  if (colon == 0 || colon >= field.size() || field[colon] != ':')
    return "malformed header field";
  name = field.substr(0, colon);
  const std::string_view raw = field.substr(colon + 1);
  if (!all_value_bytes(raw)) return "invalid byte in header field";
  take_value(raw, value, stored_form);
  return nullptr;
}

// Where the field line at `pos` ends (the index of its CR) when it is well
// formed: a token, ':', value bytes, CRLF, all found in one pass over its
// bytes (`colon`: the name's length). npos for any other line (incomplete,
// empty or broken): the caller reads it the long way, so every refusal
// keeps its order.
size_t well_formed_line_end(std::string_view d, size_t pos, size_t& colon) {
  const std::string_view rest = d.substr(pos);
  colon = token_length(rest);
  if (colon == 0 || colon >= rest.size() || rest[colon] != ':') return std::string_view::npos;
  const size_t end = colon + 1 + value_run(rest.substr(colon + 1));
  if (end + 1 >= rest.size() || rest[end] != '\r' || rest[end + 1] != '\n')
    return std::string_view::npos;
  return pos + end;
}

// Content-Length: 1 to 18 digits (no overflow possible); repeated fields
// must agree. Returns nullptr when good, else the reason for a 400.
const char* note_content_length(std::string_view value, HeadScan& r) {
  if (value.empty() || value.size() > 18) return "bad content-length";
  uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return "bad content-length";
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (r.has_content_length && n != r.content_length) return "conflicting content-length";
  r.has_content_length = true;
  r.content_length = n;
  ++r.content_length_fields;
  return nullptr;
}

// Transfer-Encoding: a list, possibly over several fields. Only recorded
// here; framing_verdict() accepts only a single final "chunked" (unknown
// codings are 501, a non-final chunked 400).
void note_transfer_encoding(std::string_view value, FramingFields& f) {
  f.te_seen = true;
  for (std::string_view coding; base::next_token(value, coding);) {
    if (f.chunked_last) f.te_bad = true;  // something after chunked
    if (iequals(coding, "chunked")) {
      f.chunked_last = true;
      ++f.chunked_count;
    } else {
      // Even a known coding before chunked ("gzip, chunked") would have
      // to survive re-framing toward the server: refused, as nginx does.
      f.chunked_last = false;
      f.te_unknown = true;
    }
  }
}

// Records one header field the gateway cares about; others pass unchecked
// beyond their syntax. Returns nullptr, or the reason for a 400.
const char* note_field(boost::beast::http::field known, std::string_view value, HeadScan& r,
                       FramingFields& f) {
  using boost::beast::http::field;
  switch (known) {
    case field::content_length:
      return note_content_length(value, r);
    case field::transfer_encoding:
      note_transfer_encoding(value, f);
      break;
    case field::host:
      ++f.host_count;
      break;
    case field::expect:
      if (iequals(value, "100-continue")) r.expect_continue = true;
      break;
    default:
      break;
  }
  return nullptr;
}

// Scans the header fields from `pos` up to the empty line. On nullopt the
// head is complete (r.head_length set) and `f` holds what was seen.
std::optional<HeadScan> scan_header_fields(std::string_view d, size_t pos,
                                           const HeadLimits& limits, HeadScan& r,
                                           FramingFields& f, HeadSink* sink) {
  uint32_t count = 0;
  for (;;) {
    size_t colon = 0;
    size_t eol = well_formed_line_end(d, pos, colon);
    const bool checked = eol != std::string_view::npos;
    if (!checked) {
      bool bad = false;
      eol = line_end(d, pos, bad);
      if (eol == std::string_view::npos) {
        if (d.size() > limits.max_header_bytes) return error(431, "request header too large");
        return HeadScan{};
      }
      if (bad) return error(400, "bad line ending");
    }
    if (eol + 2 > limits.max_header_bytes) return error(431, "request header too large");
    if (eol == pos) {  // empty line: end of head
      r.head_length = eol + 2;
      return std::nullopt;
    }
    const std::string_view field = d.substr(pos, eol - pos);
    const std::string_view rest = d.substr(pos);
    pos = eol + 2;
    if (base::is_blank(field[0])) return error(400, "obsolete line folding");
    if (++count > limits.max_headers) return error(431, "too many header fields");
    std::string_view name, value;
    bool stored_form = false;
    if (checked) {
      name = field.substr(0, colon);
      take_value(field.substr(colon + 1), value, stored_form);
    } else if (const char* reason = split_field(field, rest, name, value, stored_form)) {
      return error(400, reason);
    }
    const auto known = field_of(name);
    if (const char* reason = note_field(known, value, r, f)) return error(400, reason);
    if (sink) sink->field(known, name, value, stored_form);
  }
}

// The checks needing the whole head: framing must be unambiguous (never
// both Content-Length and Transfer-Encoding, only a single final chunked,
// none in HTTP/1.0) and Host present once (HTTP/1.0: at most once).
HeadScan framing_verdict(HeadScan r, const FramingFields& f) {
  if (f.te_seen) {
    if (r.http10) return error(400, "transfer-encoding in HTTP/1.0");
    if (r.has_content_length) return error(400, "both content-length and transfer-encoding");
    if (f.te_bad || !f.chunked_last || f.chunked_count != 1)
      return error(400, "transfer-encoding other than a final chunked");
    if (f.te_unknown) return error(501, "unknown transfer coding");
    r.chunked = true;
  }
  if (f.host_count > 1) return error(400, "duplicate host");
  if (f.host_count == 0 && !r.http10) return error(400, "missing host");
  r.state = HeadScan::State::kComplete;
  return r;
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

HeadScan scan_request_head(std::string_view d, const HeadLimits& limits, HeadSink* sink) {
  HeadScan r;
  size_t pos = 0;
  if (auto answer = scan_request_line(d, limits, r, pos, sink)) return *answer;
  FramingFields f;
  if (auto answer = scan_header_fields(d, pos, limits, r, f, sink)) return *answer;
  r = framing_verdict(r, f);
  if (sink && r.state == HeadScan::State::kComplete)
    sink->end(d.substr(pos, r.head_length - 2 - pos));
  return r;
}

void raw_request_line(std::string_view data, std::string& method, std::string& path) {
  size_t eol = data.find_first_of("\r\n");
  std::string_view line = data.substr(0, std::min<size_t>(eol, 256));
  size_t sp1 = line.find(' ');
  method.assign(line.substr(0, sp1 == std::string_view::npos ? 0 : sp1));
  if (sp1 == std::string_view::npos) {
    path.clear();
    return;
  }
  size_t sp2 = line.find(' ', sp1 + 1);
  path.assign(line.substr(sp1 + 1, sp2 == std::string_view::npos ? std::string_view::npos
                                                                   : sp2 - sp1 - 1));
}

}  // namespace sag::session
