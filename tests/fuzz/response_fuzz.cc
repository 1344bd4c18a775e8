// Fuzzes the server-response path as the Forwarder drives it: Beast's
// response parser with the gateway's settings (head limit, the chunk-size
// and extension caps of check_chunk, HEAD skipping), fed in pieces, and the
// framing decisions taken from it (no body for HEAD/1xx/204/304, reuse only
// when the response ended exactly at the end of the bytes read). Oracles:
// no crash or sanitizer report; a connection judged reusable has no byte
// left over; the body relayed never exceeds a declared Content-Length.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "session/chunked_decoder.h"

namespace http = boost::beast::http;
using sag::session::ChunkedDecoder;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool head_request = data[0] & 1;
  const size_t piece = 1 + data[1] % 64;
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);

  auto check_chunk = [](std::uint64_t n, std::string_view ext, boost::beast::error_code& ec) {
    if (n > ChunkedDecoder::kMaxChunkSize || ext.size() > ChunkedDecoder::Limits{}.max_line)
      ec = http::error::bad_chunk;
  };
  std::optional<http::response_parser<http::buffer_body>> p;
  size_t pos = 0;
  for (;;) {  // interim 1xx responses are skipped, as the Forwarder does
    p.emplace();
    p->body_limit(boost::none);
    p->header_limit(16 * 1024);
    if (head_request) p->skip(true);
    p->on_chunk_header(check_chunk);
    boost::beast::error_code ec;
    while (!p->is_header_done()) {
      // Beast wants the whole unparsed rest at each call.
      const size_t used = p->put(boost::asio::buffer(in.data() + pos, in.size() - pos), ec);
      if (ec) return 0;  // need_more: the Forwarder would wait, then time out; else a 502
      if (used == 0) return 0;
      pos += used;
    }
    const unsigned s = p->get().result_int();
    if (s >= 200 || s == 101) break;
  }
  const auto length = p->content_length();
  char buf[1024];
  uint64_t relayed = 0;
  while (!p->is_done()) {
    auto& body = p->get().body();
    body.data = buf;
    body.size = sizeof buf;
    boost::beast::error_code ec;
    const size_t end = std::min(in.size(), pos + piece);
    size_t used = p->put(boost::asio::buffer(in.data() + pos, end - pos), ec);
    if (ec == http::error::need_buffer) ec = {};
    relayed += sizeof buf - body.size;
    pos += used;
    if (ec == http::error::need_more) {
      if (end == in.size()) {
        p->put_eof(ec);  // the server closed: ends a close-delimited body
        break;
      }
      // More bytes are needed in one piece: offer everything left.
      used = p->put(boost::asio::buffer(in.data() + pos, in.size() - pos), ec);
      if (ec == http::error::need_buffer) ec = {};
      relayed += sizeof buf - body.size;
      pos += used;
      if (ec == http::error::need_more) {
        p->put_eof(ec);
        break;
      }
    }
    if (ec) return 0;  // cut short: 502 or a cut connection
    if (used == 0 && sizeof buf == body.size && !p->is_done()) return 0;
  }
  if (length && relayed > *length) std::abort();
  const bool reusable = p->is_done() && p->get().keep_alive() && pos == in.size();
  if (reusable && pos != in.size()) std::abort();
  return 0;
}
