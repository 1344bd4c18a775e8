// Fuzzes the raw request-head check together with Beast's parser, as the
// HTTP/1.1 session uses them. Oracle: when the strict scan accepts a head
// and Beast parses it too, both must agree on the body's framing;
// disagreement is exactly the shape of a request-smuggling bug.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "session/request_head.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  sag::session::HeadLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_request_line = 1024;
  limits.max_headers = 50;
  in.remove_prefix(sag::session::leading_empty_lines(in));
  auto scan = sag::session::scan_request_head(in, limits);
  if (scan.state != sag::session::HeadScan::State::kComplete) return 0;
  if (scan.head_length > in.size()) std::abort();

  http::request_parser<http::buffer_body> parser;
  parser.header_limit(8192);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(in.data(), scan.head_length), ec);
  if (ec || !parser.is_header_done()) return 0;
  if (parser.chunked() != scan.chunked) std::abort();
  auto len = parser.content_length();
  if (scan.has_content_length != len.has_value()) std::abort();
  if (len && *len != scan.content_length) std::abort();
  return 0;
}
