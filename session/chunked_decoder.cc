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

bool ChunkedDecoder::framing_byte(char ch) {
  const auto c = static_cast<unsigned char>(ch);
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
  switch (state_) {
    case State::kSizeFirst: {
      const int d = hex_value(ch);
      if (d < 0) return fail(Error::kBadSyntax);
      size_ = static_cast<uint64_t>(d);
      state_ = State::kSize;
      return true;
    }
    case State::kSize: {
      const int d = hex_value(ch);
      if (d >= 0) {
        size_ = size_ * 16 + static_cast<uint64_t>(d);
        if (size_ > kMaxChunkSize) return fail(Error::kSizeTooLarge);
        return true;
      }
      state_ = State::kExt;
      line_ = line_ - 1;  // re-counted below
      return framing_byte(ch);
    }
    case State::kExt:
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
    case State::kExtQuoted:
      if (c == '"') {
        state_ = State::kExt;
      } else if (c == '\\') {
        state_ = State::kExtQuotedEscape;
      } else if (!is_value_byte(c)) {
        return fail(Error::kBadSyntax);
      }
      return true;
    case State::kExtQuotedEscape:
      if (!is_value_byte(c)) return fail(Error::kBadSyntax);
      state_ = State::kExtQuoted;
      return true;
    case State::kSizeLf:
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
    case State::kDataCr:
      if (c != '\r') return fail(Error::kBadSyntax);
      state_ = State::kDataLf;
      return true;
    case State::kDataLf:
      if (c != '\n') return fail(Error::kBadSyntax);
      state_ = State::kSizeFirst;
      return true;
    case State::kTrailerLineStart:
      if (c == '\r') {
        state_ = State::kFinalLf;
        return true;
      }
      // A field name starts here: no obs-fold, no empty name.
      if (!is_tchar(c)) return fail(Error::kBadSyntax);
      trailer_colon_ = false;
      state_ = State::kTrailerLine;
      return true;
    case State::kTrailerLine:
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
    case State::kTrailerLf:
      if (c != '\n') return fail(Error::kBadSyntax);
      state_ = State::kTrailerLineStart;
      return true;
    case State::kFinalLf:
      if (c != '\n') return fail(Error::kBadSyntax);
      state_ = State::kDone;
      return true;
    case State::kData:
    case State::kDone:
    case State::kFailed:
      break;
  }
  return fail(Error::kBadSyntax);
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
