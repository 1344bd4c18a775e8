// Fuzzes ChunkedDecoder, the decoder of every chunked body the gateway
// relays. Oracles:
// - fed in pieces (sizes from the input's first byte) with a small output
//   buffer, it decodes exactly what it decodes fed whole: framing state
//   survives every split;
// - it never consumes past the body's end, and a cap is never exceeded;
// - when it accepts a body, Beast's chunked parser (the server's view, as
//   far as one strict parser stands for another) accepts the same bytes with
//   the same data and the same end: a disagreement is a smuggling shape.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "session/chunked_decoder.h"

namespace http = boost::beast::http;
using sag::session::ChunkedDecoder;

namespace {

struct Run {
  std::string data;
  size_t consumed = 0;
  bool done = false;
  ChunkedDecoder::Error error = ChunkedDecoder::Error::kNone;
};

Run decode(std::string_view in, size_t piece, size_t out_cap, const ChunkedDecoder::Limits& l) {
  ChunkedDecoder d(l);
  Run r;
  std::string out(out_cap, '\0');
  while (r.consumed < in.size() && !d.done() && !d.failed()) {
    std::string_view part = in.substr(r.consumed, piece);
    auto step = d.decode(part, out.data(), out.size());
    if (step.consumed > part.size() || step.produced > out.size()) std::abort();
    r.data.append(out.data(), step.produced);
    r.consumed += step.consumed;
    if (step.consumed == 0 && step.produced == 0 && !d.done() && !d.failed()) std::abort();
  }
  if (d.body_bytes() != r.data.size()) std::abort();
  r.done = d.done();
  r.error = d.error();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t piece = 1 + data[0] % 17;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  ChunkedDecoder::Limits l;
  l.max_line = 64;
  l.max_trailers = 256;
  l.max_body = 0;

  const Run whole = decode(in, in.size() + 1, 1 << 16, l);
  const Run split = decode(in, piece, 1 + data[0] % 5, l);
  if (whole.data != split.data || whole.done != split.done || whole.error != split.error ||
      whole.consumed != split.consumed)
    std::abort();
  if (!whole.done) return 0;

  // Beast's view of the same body, behind a minimal head.
  std::string wire = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const size_t head = wire.size();
  wire.append(in.substr(0, whole.consumed));
  http::request_parser<http::string_body> p;
  p.eager(true);
  p.header_limit(1 << 16);
  p.body_limit(boost::none);
  boost::beast::error_code ec;
  size_t used = p.put(boost::asio::buffer(wire), ec);
  while (!ec && !p.is_done() && used < wire.size()) {
    size_t n = p.put(boost::asio::buffer(wire.data() + used, wire.size() - used), ec);
    if (n == 0) break;
    used += n;
  }
  // Beast is stricter in places (trailer field syntax it checks as
  // headers); only an accepted body must agree.
  if (ec || !p.is_done()) return 0;
  if (used != wire.size() || p.get().body() != whole.data) std::abort();
  (void)head;
  return 0;
}
