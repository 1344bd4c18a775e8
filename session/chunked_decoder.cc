#include "session/chunked_decoder.h"

#include "config/base/hex.h"
#include "session/http_chars.h"

#include <algorithm>
#include <cstring>

namespace sag::session {
namespace {
using base::hex_value;
}  // namespace

GatewayError ChunkedDecoder::gateway_error(Error e) {
  switch (e) {
    case Error::kTrailersTooLarge:
      return GatewayError::kTrailersTooLarge;
    case Error::kBodyTooLarge:
      return GatewayError::kBodyTooLarge;
    default:
      return GatewayError::kMalformedBody;
  }
}

const char* ChunkedDecoder::reason_of(Error e) {
  switch (e) {
    case Error::kNone:
      return "";
    case Error::kBadSyntax:
      return "malformed chunked body";
    case Error::kLineTooLong:
      return "chunk size line too long";
    case Error::kSizeTooLarge:
      return "chunk size too large";
    case Error::kTrailersTooLarge:
      return "chunked trailers too large";
    case Error::kBodyTooLarge:
      return "request body too large";
  }
  return "";
}

// Dispatches on the state group. Caps are charged before the byte is read,
// so a line over its cap fails at its first excess byte, whatever it is.
bool ChunkedDecoder::framing_byte(char ch) {
  if (!charge_framing_byte()) return false;
  const auto c = static_cast<unsigned char>(ch);
  switch (state_) {
    case State::kSizeFirst:
    case State::kSize:
      return size_byte(ch);
    case State::kExt:
      return extension_byte(c);
    case State::kExtQuoted:
    case State::kExtQuotedEscape:
      return quoted_extension_byte(c);
    case State::kSizeLf:
      return size_line_lf(c);
    case State::kDataCr:
      return expect_byte(c, '\r', State::kDataLf);
    case State::kDataLf:
      return expect_byte(c, '\n', State::kSizeFirst);
    case State::kTrailerLineStart:
    case State::kTrailerLine:
      return trailer_byte(c);
    case State::kTrailerLf:
      return expect_byte(c, '\n', State::kTrailerLineStart);
    case State::kFinalLf:
      return expect_byte(c, '\n', State::kDone);
    case State::kData:  // decode() copies data itself, never byte by byte
    case State::kDone:
    case State::kFailed:
      break;
  }
  return fail(Error::kBadSyntax);
}

// Size-line states (extensions included) count against max_line, trailer
// states against max_trailers; the CRLF after data and the final LF are
// not counted.
bool ChunkedDecoder::charge_framing_byte() {
  switch (state_) {
    case State::kSizeFirst:
    case State::kSize:
    case State::kExt:
    case State::kExtQuoted:
    case State::kExtQuotedEscape:
      if (++line_ > limits_.max_line) return fail(Error::kLineTooLong);
      break;
    case State::kTrailerLineStart:
    case State::kTrailerLine:
    case State::kTrailerLf:
      if (++trailers_ > limits_.max_trailers) return fail(Error::kTrailersTooLarge);
      break;
    default:
      break;
  }
  return true;
}

// At least one hex digit; the size is capped as it grows, so it can never
// overflow. The first non-hex byte after a digit ends the size and is
// re-read as the start of the extensions.
bool ChunkedDecoder::size_byte(char ch) {
  const int d = hex_value(ch);
  if (state_ == State::kSizeFirst) {
    if (d < 0) return fail(Error::kBadSyntax);
    size_ = static_cast<uint64_t>(d);
    state_ = State::kSize;
    return true;
  }
  if (d >= 0) {
    size_ = size_ * 16 + static_cast<uint64_t>(d);
    if (size_ > kMaxChunkSize) return fail(Error::kSizeTooLarge);
    return true;
  }
  state_ = State::kExt;
  line_ = line_ - 1;  // re-counted by framing_byte
  return framing_byte(ch);
}

// Extensions are checked for syntax only (tokens, '=', quoted-strings) and
// dropped; nothing may follow the size but whitespace before the first ';'.
bool ChunkedDecoder::extension_byte(unsigned char c) {
  if (c == '\r') {
    state_ = State::kSizeLf;
    return true;
  }
  if (c == '"') {
    state_ = State::kExtQuoted;
    return true;
  }
  if (c == ' ' || c == '\t' || c == ';' || c == '=' || is_tchar(c)) {
    // The first thing after the size (and optional whitespace) is ';'.
    if (c != ' ' && c != '\t' && c != ';' && !ext_started_) return fail(Error::kBadSyntax);
    if (c == ';') ext_started_ = true;
    return true;
  }
  return fail(Error::kBadSyntax);
}

// A quoted-string may hold any value byte (no controls, so no CR/LF), a
// backslash escaping the next one.
bool ChunkedDecoder::quoted_extension_byte(unsigned char c) {
  if (state_ == State::kExtQuotedEscape) {
    if (!is_value_byte(c)) return fail(Error::kBadSyntax);
    state_ = State::kExtQuoted;
    return true;
  }
  if (c == '"') {
    state_ = State::kExt;
  } else if (c == '\\') {
    state_ = State::kExtQuotedEscape;
  } else if (!is_value_byte(c)) {
    return fail(Error::kBadSyntax);
  }
  return true;
}

// The size line is complete: a zero size starts the trailer section, any
// other is charged to max_body (declared sizes, so an oversized body fails
// before its data arrives) and starts the data.
bool ChunkedDecoder::size_line_lf(unsigned char c) {
  if (c != '\n') return fail(Error::kBadSyntax);
  line_ = 0;
  ext_started_ = false;
  if (size_ == 0) {
    state_ = State::kTrailerLineStart;
    return true;
  }
  declared_ += size_;
  if (limits_.max_body > 0 && declared_ > limits_.max_body) return fail(Error::kBodyTooLarge);
  state_ = State::kData;
  return true;
}

// A trailer line is "name:value" with a token name (no space before the
// colon) and value bytes after it; a CR at the start of a line is the final
// CRLF. Trailers are checked and dropped.
bool ChunkedDecoder::trailer_byte(unsigned char c) {
  if (state_ == State::kTrailerLineStart) {
    if (c == '\r') {
      state_ = State::kFinalLf;
      return true;
    }
    // A field name starts here: no obs-fold, no empty name.
    if (!is_tchar(c)) return fail(Error::kBadSyntax);
    trailer_colon_ = false;
    state_ = State::kTrailerLine;
    return true;
  }
  if (c == '\r') {
    if (!trailer_colon_) return fail(Error::kBadSyntax);
    state_ = State::kTrailerLf;
    return true;
  }
  if (!trailer_colon_) {
    if (c == ':') {
      trailer_colon_ = true;
      return true;
    }
    if (!is_tchar(c)) return fail(Error::kBadSyntax);  // incl. space before the colon
    return true;
  }
  if (!is_value_byte(c)) return fail(Error::kBadSyntax);
  return true;
}

// Strict CRLF: no bare LF, no bare CR.
bool ChunkedDecoder::expect_byte(unsigned char c, unsigned char want, State next) {
  if (c != want) return fail(Error::kBadSyntax);
  state_ = next;
  return true;
}

ChunkedDecoder::Step ChunkedDecoder::decode(std::string_view in, char* out, size_t out_cap) {
  Step step;
  const char* p = in.data();
  const char* const end = p + in.size();
  while (p < end && state_ != State::kDone && state_ != State::kFailed) {
    if (state_ == State::kData) {
      const size_t room = out_cap - step.produced;
      if (room == 0) break;
      const size_t n = static_cast<size_t>(
          std::min<uint64_t>({size_, static_cast<uint64_t>(end - p), static_cast<uint64_t>(room)}));
      std::memcpy(out + step.produced, p, n);
      step.produced += n;
      p += n;
      size_ -= n;
      total_ += n;
      if (size_ == 0) state_ = State::kDataCr;
      continue;
    }
    if (!framing_byte(*p)) break;
    ++p;
  }
  step.consumed = static_cast<size_t>(p - in.data());
  return step;
}

}  // namespace sag::session
