// write_head (session/head_writer.h) writes exactly what Beast's serializer
// writes for the same head with Beast's own basic_fields, or 0 when the
// head does not fit. (The reference is basic_fields, not HeaderFields:
// HeaderFields' serializer writer calls write_head's code, so comparing
// against it would compare the code with itself.)
#include "session/head_writer.h"

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/serializer.hpp>

namespace sag::session {
namespace {
namespace http = boost::beast::http;

// The same head with Beast's basic_fields (the cases below never
// interleave repeated names, where basic_fields would regroup them).
http::request_header<> beast_copy(const RequestHeader& h) {
  http::request_header<> b;
  b.method_string(h.method_string());
  b.target(h.target());
  b.version(h.version());
  for (const auto& f : h) b.insert(f.name_string(), f.value());
  return b;
}
http::response_header<> beast_copy(const ResponseHeader& h) {
  http::response_header<> b;
  b.result(h.result_int());
  b.reason(h.reason());
  b.version(h.version());
  for (const auto& f : h) b.insert(f.name_string(), f.value());
  return b;
}

// What a Beast serializer writes as the head of `m`.
template <bool isRequest, class F>
std::string serialized_head(const http::message<isRequest, http::empty_body, F>& m) {
  http::serializer<isRequest, http::empty_body, F> sr(m);
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

// Beast's own bytes for the head of `h`.
template <class H>
std::string beast_head(const H& h) {
  constexpr bool kRequest = std::is_same_v<H, RequestHeader>;
  return serialized_head(http::message<kRequest, http::empty_body>(beast_copy(h)));
}

// HeaderFields' own serializer path (its writer), which must agree too.
template <class H>
std::string our_serializer_head(const H& h) {
  constexpr bool kRequest = std::is_same_v<H, RequestHeader>;
  return serialized_head(http::message<kRequest, http::empty_body, Fields>(h));
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

// Lines that lie back to back (a parsed head's, filed in place and adopted
// with one copy) go out as runs: a field erased between them, or set anew
// (moved to the end), must break the run and not be written from where its
// old line still lies.
TEST(HeadWriter, RunsOfStoredLinesBreakWhereFieldsWereErasedOrMoved) {
  const std::string input = "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n";
  ResponseHeader h;
  h.result(http::status::ok);
  h.version(11);
  for (size_t at = 0; at < input.size(); at += 6) {
    const std::string_view line(input.data() + at, 4);
    h.append_stored(http::field::unknown, line.substr(0, 1), line.substr(3, 1));
  }
  h.adopt_input(input);
  h.erase("B");
  h.set("D", "four");
  h.insert("F", "6");
  EXPECT_EQ(flat(h), "HTTP/1.1 200 OK\r\nA: 1\r\nC: 3\r\nE: 5\r\nD: four\r\nF: 6\r\n\r\n");
  EXPECT_EQ(flat(h), beast_head(h));
}

TEST(HeadWriter, ZeroWhenItDoesNotFit) {
  ResponseHeader h;
  h.result(http::status::ok);
  h.set(http::field::server, std::string(100, 'x'));
  const size_t full = beast_head(h).size();
  EXPECT_EQ(flat(h, full).size(), full);
  EXPECT_EQ(flat(h, full - 1), "");  // one byte short
  EXPECT_EQ(flat(h, 5), "");
  EXPECT_LE(full, head_size_bound(h.reason(), {}, h));
  h.version(20);  // any version is written as Beast writes it
  EXPECT_EQ(flat(h), beast_head(h));
  EXPECT_EQ(flat(h).substr(0, 9), "HTTP/2.0 ");
}

TEST(HeadWriter, TheSerializerPathWritesTheSameHead) {
  RequestHeader q;
  q.method_string("PURGEALL");
  q.target("/x");
  q.version(10);
  q.insert("X-A", "1");
  EXPECT_EQ(our_serializer_head(q), beast_head(q));
  ResponseHeader r;
  r.result(599);
  r.version(11);
  r.insert(http::field::server, "s");
  EXPECT_EQ(our_serializer_head(r), beast_head(r));
  r.reason("Odd");
  EXPECT_EQ(our_serializer_head(r), beast_head(r));
}

}  // namespace
}  // namespace sag::session
