// write_head (session/head_writer.h) writes exactly what Beast's serializer
// writes for the same head, or 0 when it can't (too small, odd version).
#include "session/head_writer.h"

#include <gtest/gtest.h>

#include <string>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>

namespace sag::session {
namespace {
namespace http = boost::beast::http;

// Beast's own bytes for the head of `h`.
template <bool isRequest>
std::string beast_head(const http::header<isRequest, Fields>& h) {
  http::message<isRequest, http::empty_body, Fields> m(h);
  http::serializer<isRequest, http::empty_body, Fields> sr(m);
  std::string out;
  boost::system::error_code ec;
  while (!sr.is_header_done()) {
    sr.next(ec, [&](boost::system::error_code&, const auto& buffers) {
      out += boost::beast::buffers_to_string(buffers);
      sr.consume(boost::asio::buffer_size(buffers));
    });
  }
  return out;
}

template <class H>
std::string flat(const H& h, size_t cap = 4096) {
  std::string buf(cap, '\0');
  const size_t n = write_head(h, buf.data(), cap);
  return buf.substr(0, n);
}

TEST(HeadWriter, RequestsAsBeastWritesThem) {
  RequestHeader h;
  h.method(http::verb::get);
  h.target("/a/b?c=d");
  h.version(11);
  h.set(http::field::host, "app.example");
  h.insert("X-Custom", "v1");
  h.insert("x-custom", "v2");  // repeated, order kept
  h.set(http::field::cookie, "SRV=abc; other=1");
  EXPECT_EQ(flat(h), beast_head(h));
  EXPECT_EQ(flat(h).substr(0, 24), "GET /a/b?c=d HTTP/1.1\r\nH");

  h.method_string("PURGEALL");  // an unknown method keeps its text
  h.version(10);
  EXPECT_EQ(flat(h), beast_head(h));

  RequestHeader bare;  // no fields at all
  bare.method(http::verb::options);
  bare.target("*");
  EXPECT_EQ(flat(bare), beast_head(bare));
  EXPECT_EQ(flat(bare), "OPTIONS * HTTP/1.1\r\n\r\n");
}

TEST(HeadWriter, ResponsesAsBeastWritesThem) {
  ResponseHeader h;
  h.result(http::status::ok);
  h.version(11);
  h.set(http::field::content_type, "text/plain");
  h.set(http::field::content_length, "5");
  h.insert(http::field::set_cookie, "SRV=x; Path=/; HttpOnly");
  EXPECT_EQ(flat(h), beast_head(h));
  EXPECT_EQ(flat(h).substr(0, 17), "HTTP/1.1 200 OK\r\n");

  h.reason("Fine Thanks");  // the server's own reason phrase is kept
  EXPECT_EQ(flat(h), beast_head(h));
  h.reason("");
  h.result(599);  // no standard text
  h.version(10);
  EXPECT_EQ(flat(h), beast_head(h));
  h.result(http::status::not_modified);
  EXPECT_EQ(flat(h), beast_head(h));
}

TEST(HeadWriter, ZeroWhenItDoesNotFitOrTheVersionIsOdd) {
  ResponseHeader h;
  h.result(http::status::ok);
  h.set(http::field::server, std::string(100, 'x'));
  const size_t full = beast_head(h).size();
  EXPECT_EQ(flat(h, full).size(), full);
  EXPECT_EQ(flat(h, full - 1), "");  // one byte short
  EXPECT_EQ(flat(h, 5), "");
  h.version(20);
  EXPECT_EQ(flat(h), "");
}

}  // namespace
}  // namespace sag::session
