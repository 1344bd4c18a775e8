// Parses a server's HTTP/1.1 response: the head into a Response, then the
// body's framing (RFC 9112 §6.3), without I/O. Http1ServerConnection feeds
// it the bytes it reads; the response fuzz target feeds it the same way.
//
// Why not Beast's parser: parsing the response head through it cost more
// per request than everything else the gateway does to a response, and it
// kept chunk-size lines in the read buffer without a cap. Here chunked
// bodies go through ChunkedDecoder (the caps clients get), and a body
// with a length can be read straight into the relay buffer.
//
// Strict where a disagreement with the client about where the response
// ends would matter: CRLF line ends only, no obs-fold, no control bytes in
// fields, Content-Length plain digits (a list only of equal values), never
// both Content-Length and Transfer-Encoding, chunked only as the final
// coding and only once. Errors are Beast's http::error codes, so callers
// tell invalid HTTP from a closed connection as before.
//
// Not thread-safe; one per response. Allocation-free but for the fields
// it inserts into the Response (the worker's block cache).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "session/chunked_decoder.h"
#include "session/http_message.h"

namespace sag::session {

class ResponseReader {
 public:
  enum class Framing : uint8_t {
    kNone,        // HEAD, 1xx, 204, 304: the head is the whole response
    kLength,      // Content-Length
    kChunked,     // Transfer-Encoding ending in chunked
    kUntilClose,  // neither: the body ends when the server closes
  };

  // Looks for a complete head at the start of `in` (the bytes read so far).
  // Returns its length when found and valid: `res` then holds status,
  // reason, version and fields, and the body framing is set (a HEAD
  // request's response has none). Returns 0 with no error when more bytes
  // are needed; 0 with `ec` set when the head is invalid. An interim 1xx
  // other than 101 is parsed like any head: the caller skips it and parses
  // again.
  //
  // A head not all here yet is resumed at its first incomplete line when
  // `in` comes back longer from the same address (the caller only appended
  // to it) with the same `res`, so a head dribbled in many reads costs
  // linear, not quadratic, work in its lines: the bytes before that line
  // are not looked at again, and the fields filed from them stay in `res`,
  // referring to them, meanwhile (a caller that gives up on such a head
  // must clear `res` before its input goes). Any other `in` starts a head
  // afresh: `res` is cleared once its status line is complete and valid.
  size_t parse_head(std::string_view in, bool head_request, Response& res,
                    boost::system::error_code& ec);

  // Decodes body bytes from `in` into out[0, cap). Returns the input used;
  // `produced` the body bytes written. Never uses input past the body's
  // end. On a framing error `ec` is set (http::error::bad_chunk).
  size_t decode(std::string_view in, char* out, size_t cap, size_t& produced,
                boost::system::error_code& ec);
  // For a body that is not chunked: how many of `cap` bytes may be read
  // straight from the socket into the output (never past a declared end);
  // 0 for a chunked body, which must go through decode().
  size_t direct_limit(size_t cap) const;
  // `n` bytes were read straight into the output (at most direct_limit()).
  void consumed_direct(size_t n);
  // The server closed: ends a body that runs until close; anything else
  // still expected sets `ec` to http::error::partial_message.
  void end_of_input(boost::system::error_code& ec);

  Framing framing() const { return framing_; }
  bool done() const { return done_; }
  // Whether the server lets the connection carry another request
  // (HTTP/1.1 without "close", HTTP/1.0 with "keep-alive", and a body
  // that does not run until close).
  bool keep_alive() const { return keep_alive_; }
  // The declared Content-Length, when the response has one (HEAD, 204 and
  // 304 included).
  std::optional<uint64_t> content_length() const { return content_length_; }

 private:
  void set_framing(unsigned status, bool head_request, bool te_seen, bool chunked);

  Framing framing_ = Framing::kNone;
  // A head cut short: what its lines so far said about framing and the
  // connection (HeadFacts::flags() in response_reader.cc; its
  // Content-Length is in content_length_).
  uint8_t partial_facts_ = 0;
  uint64_t left_ = 0;  // kLength: bytes still to come
  std::optional<uint64_t> content_length_;
  std::optional<ChunkedDecoder> chunked_;
  // A head cut short: the start of the input it lies in, and where its
  // first incomplete line starts (0: no head to resume).
  const char* partial_base_ = nullptr;
  bool done_ = false;
  bool keep_alive_ = false;
  uint32_t partial_at_ = 0;
};

}  // namespace sag::session
