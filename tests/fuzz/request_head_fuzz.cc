// Fuzzes the raw request-head check and the request built from it
// in the same pass (RequestFill), as the HTTP/1.1 session uses them, against Beast's parser
// as an independent reading. Oracles: when the strict scan accepts a head
// and Beast parses it too, both must agree on the body's framing
// (disagreement is exactly the shape of a request-smuggling bug), and the
// request RequestFill builds must have Beast's method, target, version and
// fields (each name's values in the same order).
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "session/request_fill.h"
#include "session/request_head.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  sag::session::HeadLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_request_line = 1024;
  limits.max_headers = 50;
  in.remove_prefix(sag::session::leading_empty_lines(in));
  // As the session scans: the request built in the same pass. A scan
  // without a sink must give the same answer.
  sag::session::RequestHeader req;
  sag::session::RequestFill fill(req);
  auto scan = sag::session::scan_request_head(in, limits, &fill);
  const auto plain = sag::session::scan_request_head(in, limits);
  if (plain.state != scan.state || plain.head_length != scan.head_length ||
      plain.status != scan.status || plain.content_length != scan.content_length)
    std::abort();
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

  const auto& b = parser.get();
  if (req.method_string() != b.method_string() || req.target() != b.target() ||
      req.version() != b.version())
    std::abort();
  // Beast files a field after the last one of its name; HeaderFields keeps
  // the wire order. Per name, the values and their order must agree.
  using Field = std::tuple<std::string, std::string, std::string, int>;
  auto fields_of = [](const auto& fields) {
    std::vector<Field> out;
    for (const auto& f : fields) {
      std::string key(f.name_string());
      for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.emplace_back(key, std::string(f.name_string()), std::string(f.value()),
                       static_cast<int>(f.name()));
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const Field& x, const Field& y) { return std::get<0>(x) < std::get<0>(y); });
    return out;
  };
  if (fields_of(req) != fields_of(b)) std::abort();
  return 0;
}
