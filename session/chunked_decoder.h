// Decodes an HTTP/1.1 chunked body (RFC 9112 §7.1) as it streams, for
// request bodies from clients and response bodies from servers.
//
// Why not Beast's parser: it keeps a chunk-size line, its extensions and the
// trailer section in the read buffer until their end arrives, with no limit,
// so one connection sending an endless extension grows the gateway without
// bound. This decoder holds no framing bytes at all: it walks the input once,
// counts what a line has used against its cap, and fails the moment a cap
// or the grammar is broken. It copies chunk data to the caller's buffer.
//
// Caps (each fails at once, never after buffering):
// - a chunk-size line, extensions included, at most Limits::max_line bytes
//   (leading zeros count);
// - a chunk size of at most kMaxChunkSize (a larger one, 2^64-1 included,
//   is no real body: refused rather than waited for);
// - the trailer section at most Limits::max_trailers bytes (trailers are
//   checked for syntax and dropped: nothing downstream carries them);
// - the sum of chunk sizes at most Limits::max_body when that is non-zero.
//
// Strict where leniency would let two parsers disagree (request smuggling):
// CRLF only (no bare LF or CR), hex digits only, no control bytes in
// extensions or trailers.
//
// Not thread-safe; one per body. Allocation-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "session/gateway_error.h"

namespace sag::session {

class ChunkedDecoder {
 public:
  static constexpr uint64_t kMaxChunkSize = uint64_t{1} << 52;

  struct Limits {
    size_t max_line = 4096;
    size_t max_trailers = 32 * 1024;
    uint64_t max_body = 0;  // 0: unlimited
  };

  enum class Error : uint8_t {
    kNone,
    kBadSyntax,         // malformed size, extension, CRLF or trailer: 400
    kLineTooLong,       // chunk-size line over max_line: 400
    kSizeTooLarge,      // a chunk over kMaxChunkSize: 400
    kTrailersTooLarge,  // trailer section over max_trailers: 431
    kBodyTooLarge,      // sum of chunk sizes over max_body: 413
  };

  struct Step {
    size_t consumed = 0;  // input bytes used (framing and data)
    size_t produced = 0;  // data bytes written to `out`
  };

  explicit ChunkedDecoder(Limits limits) : limits_(limits) {}

  // Decodes from `in`, writing at most `out_cap` data bytes to `out`. Stops
  // when the input is used up, the output is full, the body is done or an
  // error occurred (then error() says which; consumed counts up to the bad
  // byte). Never consumes input past the body's end: what follows (a
  // pipelined request, the next response) stays for the caller.
  Step decode(std::string_view in, char* out, size_t out_cap);

  bool done() const { return state_ == State::kDone; }
  Error error() const { return error_; }
  bool failed() const { return error_ != Error::kNone; }
  // Data bytes decoded so far.
  uint64_t body_bytes() const { return total_; }

  // The answer an error gets (400, 413 or 431), and its body text.
  static GatewayError gateway_error(Error e);
  static const char* reason_of(Error e);

 private:
  enum class State : uint8_t {
    kSizeFirst,    // the first hex digit of a size
    kSize,         // more hex digits
    kExt,          // after the size: BWS and ";name[=value]" up to CR
    kExtQuoted,    // inside a quoted-string of an extension value
    kExtQuotedEscape,
    kSizeLf,       // CR seen, LF due
    kData,
    kDataCr,
    kDataLf,
    kTrailerLineStart,  // start of a trailer line, or the final CRLF
    kTrailerLine,
    kTrailerLf,
    kFinalLf,
    kDone,
    kFailed,
  };

  bool fail(Error e) {
    error_ = e;
    state_ = State::kFailed;
    return false;
  }
  // One byte of framing; false when it broke a rule (error_ set). Charges
  // the byte to its cap, then hands it to the helper for its state group.
  // The helpers below are called only from here (all in the .cc, so they
  // inline); each expects state_ to be in its group and keeps the same
  // contract: true to go on, false after fail().
  bool framing_byte(char c);
  // Counts a size-line or trailer byte against max_line / max_trailers.
  bool charge_framing_byte();
  // kSizeFirst, kSize: hex digits of the chunk size.
  bool size_byte(char ch);
  // kExt: BWS and ";name[=value]" after the size, up to CR.
  bool extension_byte(unsigned char c);
  // kExtQuoted, kExtQuotedEscape: inside an extension's quoted-string.
  bool quoted_extension_byte(unsigned char c);
  // kSizeLf: the LF ending a size line; starts the data or the trailers.
  bool size_line_lf(unsigned char c);
  // kTrailerLineStart, kTrailerLine: a trailer field line, or the final CR.
  bool trailer_byte(unsigned char c);
  // One fixed byte (a CR or LF) that moves to `next`; anything else fails.
  bool expect_byte(unsigned char c, unsigned char want, State next);

  Limits limits_;
  State state_ = State::kSizeFirst;
  Error error_ = Error::kNone;
  uint64_t size_ = 0;       // the chunk being read: declared, then left
  uint64_t total_ = 0;      // data decoded
  uint64_t declared_ = 0;   // sum of declared sizes
  size_t line_ = 0;         // bytes of the current size line
  size_t trailers_ = 0;     // bytes of the trailer section
  bool trailer_colon_ = false;
  bool ext_started_ = false;  // a ';' was seen on this size line
};

}  // namespace sag::session
