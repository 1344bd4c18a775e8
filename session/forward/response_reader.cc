#include "session/forward/response_reader.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>

#include "config/base/token_list.h"
#include "session/http_chars.h"

namespace sag::session {
namespace http = boost::beast::http;

namespace {

bool iequals(std::string_view a, std::string_view b) { return base::iequals_ascii(a, b); }

// Where the line starting at `pos` ends: the index of its CR. npos when
// no LF has arrived yet; `bad` when the LF has no CR before it.
size_t line_end(std::string_view in, size_t pos, bool& bad) {
  const void* lf = std::memchr(in.data() + pos, '\n', in.size() - pos);
  if (lf == nullptr) return std::string_view::npos;
  const size_t at = static_cast<size_t>(static_cast<const char*>(lf) - in.data());
  bad = at == pos || in[at - 1] != '\r';
  return at - 1;
}

// "HTTP/1.x SP 3DIGIT [SP reason]". Sets version, status and reason;
// false with `ec` set when malformed.
bool parse_status_line(std::string_view line, unsigned& version, unsigned& status,
                       std::string_view& reason, boost::system::error_code& ec) {
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[5] != '1' || line[6] != '.' ||
      line[7] < '0' || line[7] > '9' || line[8] != ' ') {
    ec = http::error::bad_version;
    return false;
  }
  version = 10 + static_cast<unsigned>(line[7] - '0');
  status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      ec = http::error::bad_status;
      return false;
    }
    status = status * 10 + static_cast<unsigned>(line[i] - '0');
  }
  if (status < 100) {
    ec = http::error::bad_status;
    return false;
  }
  reason = {};
  if (line.size() > 12) {
    if (line[12] != ' ') {
      ec = http::error::bad_status;
      return false;
    }
    reason = line.substr(13);
    if (!all_value_bytes(reason)) {
      ec = http::error::bad_reason;
      return false;
    }
  }
  return true;
}

// What the fields said about framing and the connection.
struct HeadFacts {
  std::optional<uint64_t> content_length;
  bool te_seen = false;
  bool chunked = false;     // the last coding so far is chunked
  bool close = false;       // Connection: close
  bool keep_alive = false;  // Connection: keep-alive

  // The four flags in a byte, kept by the reader while a head is cut short.
  uint8_t flags() const {
    return static_cast<uint8_t>(te_seen | chunked << 1 | close << 2 | keep_alive << 3);
  }
  static HeadFacts from(uint8_t flags, std::optional<uint64_t> length) {
    return {length, (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0, (flags & 8) != 0};
  }
};

// Content-Length: a list of plain-digit values that must all agree, here
// and with earlier fields.
bool note_content_length(std::string_view value, HeadFacts& f, boost::system::error_code& ec) {
  for (size_t start = 0; start <= value.size();) {
    size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    const std::string_view tok = base::trim_blanks(value.substr(start, comma - start));
    start = comma + 1;
    if (tok.empty() || tok.size() > 19) {
      ec = http::error::bad_content_length;
      return false;
    }
    uint64_t n = 0;
    for (char c : tok) {
      if (c < '0' || c > '9') {
        ec = http::error::bad_content_length;
        return false;
      }
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (f.content_length && *f.content_length != n) {
      ec = http::error::multiple_content_length;
      return false;
    }
    f.content_length = n;
  }
  if (f.te_seen) ec = http::error::bad_transfer_encoding;
  return !ec;
}

// Transfer-Encoding: chunked at most once and only last; never with a
// Content-Length.
bool note_transfer_encoding(std::string_view value, HeadFacts& f, boost::system::error_code& ec) {
  if (f.content_length) {
    ec = http::error::bad_transfer_encoding;
    return false;
  }
  f.te_seen = true;
  for (std::string_view coding; base::next_token(value, coding);) {
    if (f.chunked) {
      ec = http::error::bad_transfer_encoding;  // anything after chunked
      return false;
    }
    f.chunked = iequals(coding, "chunked");
  }
  return true;
}

void note_connection(std::string_view value, HeadFacts& f) {
  // The usual value, whole, without walking it as a list.
  if (value.size() == 10 && equals_lowercase(value, "keep-alive")) {
    f.keep_alive = true;
    return;
  }
  for (std::string_view token; base::next_token(value, token);) {
    if (iequals(token, "close")) f.close = true;
    else if (iequals(token, "keep-alive")) f.keep_alive = true;
  }
}

// One field, split and checked (`raw`: its value bytes, untrimmed): noted
// when it is about framing or the connection, and filed. A line written as
// it is stored ("Name: value", one space, no trailing blanks) is filed where
// it lies in the input (HeaderFields::append_stored; the caller adopts the
// input once the head is complete); others are stored anew.
bool file_field(std::string_view name, std::string_view raw, Response& res, HeadFacts& f,
                boost::system::error_code& ec) {
  // Nearly every line is written as stored: one space, then a value that
  // neither starts nor ends with a blank; only the others are trimmed.
  const bool as_stored =
      raw.size() >= 2 && raw[0] == ' ' && !base::is_blank(raw[1]) && !base::is_blank(raw.back());
  const std::string_view value = as_stored ? raw.substr(1) : base::trim_blanks(raw);
  const http::field known = field_of(name);
  if (known == http::field::content_length) {
    if (!note_content_length(value, f, ec)) return false;
  } else if (known == http::field::transfer_encoding) {
    if (!note_transfer_encoding(value, f, ec)) return false;
  } else if (known == http::field::connection) {
    note_connection(value, f);
  }
  if (as_stored) {
    res.append_stored(known, name, value);
  } else {
    res.insert(known, name, value);
  }
  return true;
}

enum class Step : uint8_t { kField, kEnd, kMore, kFailed };

// The line at `pos`, in one pass over its bytes: the name's token bytes,
// then value bytes up to the first other byte, which must be the CR of a
// CRLF. kField: filed, `pos` moved past its CRLF; kEnd: the empty line
// (`pos` at its CR); kMore: the line is not all here yet; kFailed: `ec` set.
Step next_field(std::string_view in, size_t& pos, Response& res, HeadFacts& f,
                boost::system::error_code& ec) {
  const size_t n = in.size();
  if (pos >= n) return Step::kMore;
  const char first = in[pos];
  if (first == '\r') {
    if (pos + 1 == n) return Step::kMore;
    if (in[pos + 1] == '\n') return Step::kEnd;
    ec = http::error::bad_line_ending;
    return Step::kFailed;
  }
  if (first == '\n') {
    ec = http::error::bad_line_ending;
    return Step::kFailed;
  }
  if (base::is_blank(first)) {
    ec = http::error::bad_obs_fold;
    return Step::kFailed;
  }
  const size_t colon = pos + token_length(in.substr(pos));
  if (colon == n) return Step::kMore;
  if (colon == pos || in[colon] != ':') {
    if (in[colon] == '\r' && colon + 1 == n) return Step::kMore;
    ec = in[colon] == '\n' ? http::error::bad_line_ending : http::error::bad_field;
    return Step::kFailed;
  }
  const size_t end = colon + 1 + value_run(in.substr(colon + 1));
  if (end == n) return Step::kMore;
  if (in[end] != '\r') {
    ec = in[end] == '\n' ? http::error::bad_line_ending : http::error::bad_value;
    return Step::kFailed;
  }
  if (end + 1 == n) return Step::kMore;
  if (in[end + 1] != '\n') {  // a bare CR in the value
    ec = http::error::bad_value;
    return Step::kFailed;
  }
  const std::string_view name = in.substr(pos, colon - pos);
  if (!file_field(name, in.substr(colon + 1, end - colon - 1), res, f, ec)) return Step::kFailed;
  pos = end + 2;
  return Step::kField;
}

}  // namespace

size_t ResponseReader::parse_head(std::string_view in, bool head_request, Response& res,
                                  boost::system::error_code& ec) {
  ec = {};
  // Lines are split, checked and filed as they are found. A head not
  // complete yet goes on from its first incomplete line when more bytes
  // came (the fields filed before it stay in `res`); only a head whose
  // input moved is parsed again from its start.
  const size_t resume_at =
      partial_at_ != 0 && partial_base_ == in.data() && partial_at_ <= in.size() ? partial_at_ : 0;
  partial_at_ = 0;
  bool bad = false;
  size_t eol = line_end(in, 0, bad);
  if (eol == std::string_view::npos) return 0;
  if (bad) {
    ec = http::error::bad_line_ending;
    return 0;
  }
  const size_t fields_at = eol + 2;
  unsigned version = 0, status = 0;
  size_t pos = fields_at;
  HeadFacts facts;
  if (resume_at != 0) {
    version = res.version();
    status = res.result_int();
    pos = resume_at;
    facts = HeadFacts::from(partial_facts_, content_length_);
  } else {
    std::string_view reason;
    if (!parse_status_line(in.substr(0, eol), version, status, reason, ec)) return 0;
    res = Response{};
    res.version(version);
    res.result(status);
    res.reason(reason);
  }
  for (Step step; (step = next_field(in, pos, res, facts, ec)) != Step::kEnd;) {
    if (step == Step::kMore && pos <= UINT32_MAX) {
      partial_base_ = in.data();
      partial_at_ = static_cast<uint32_t>(pos);
      partial_facts_ = facts.flags();
      content_length_ = facts.content_length;
      return 0;
    }
    if (step != Step::kField) {
      res = Response{};  // (its fields may refer to `in`)
      return 0;
    }
  }
  eol = pos;
  // The fields filed where they lay now move with one copy of their lines.
  res.adopt_input(in.substr(fields_at, eol - fields_at));
  content_length_ = facts.content_length;
  keep_alive_ = version >= 11 ? !facts.close : facts.keep_alive && !facts.close;
  set_framing(status, head_request, facts.te_seen, facts.chunked);
  return eol + 2;
}

void ResponseReader::set_framing(unsigned status, bool head_request, bool te_seen, bool chunked) {
  chunked_.reset();
  left_ = 0;
  done_ = false;
  if (head_request || status < 200 || status == 204 || status == 304) {
    framing_ = Framing::kNone;
    done_ = true;
  } else if (te_seen && chunked) {
    framing_ = Framing::kChunked;
    chunked_.emplace(ChunkedDecoder::Limits{});
  } else if (content_length_ && !te_seen) {
    framing_ = Framing::kLength;
    left_ = *content_length_;
    done_ = left_ == 0;
  } else {
    framing_ = Framing::kUntilClose;
    keep_alive_ = false;
  }
}

size_t ResponseReader::decode(std::string_view in, char* out, size_t cap, size_t& produced,
                              boost::system::error_code& ec) {
  ec = {};
  produced = 0;
  if (done_) return 0;
  switch (framing_) {
    case Framing::kNone:
      return 0;
    case Framing::kChunked: {
      const auto step = chunked_->decode(in, out, cap);
      produced = step.produced;
      if (chunked_->failed()) ec = http::error::bad_chunk;
      done_ = chunked_->done();
      return step.consumed;
    }
    case Framing::kLength:
    case Framing::kUntilClose: {
      const size_t n = std::min({in.size(), cap, static_cast<size_t>(direct_limit(cap))});
      if (n > 0) std::memcpy(out, in.data(), n);
      consumed_direct(n);
      produced = n;
      return n;
    }
  }
  return 0;
}

size_t ResponseReader::direct_limit(size_t cap) const {
  if (done_) return 0;
  if (framing_ == Framing::kLength) return static_cast<size_t>(std::min<uint64_t>(cap, left_));
  if (framing_ == Framing::kUntilClose) return cap;
  return 0;
}

void ResponseReader::consumed_direct(size_t n) {
  if (framing_ != Framing::kLength) return;
  left_ -= std::min<uint64_t>(n, left_);
  done_ = left_ == 0;
}

void ResponseReader::end_of_input(boost::system::error_code& ec) {
  ec = {};
  if (done_) return;
  if (framing_ == Framing::kUntilClose) {
    done_ = true;
  } else {
    ec = http::error::partial_message;
  }
}

}  // namespace sag::session
