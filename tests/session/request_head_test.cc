// Strict request head validation before forwarding (session/request_head.h,
// docs/behaviour.md#request-path): framing and smuggling shapes, limits.
#include "session/request_head.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace sag::session {
namespace {

using namespace std::string_literals;
using State = HeadScan::State;

HeadScan scan(std::string_view d, HeadLimits limits = {}) { return scan_request_head(d, limits); }

// A request with the given extra header lines (each without CRLF).
std::string req(std::string_view extra, std::string_view start = "GET /index.html HTTP/1.1",
                bool host = true) {
  std::string s(start);
  s += "\r\n";
  if (host) s += "Host: example.com\r\n";
  if (!extra.empty()) {
    s += extra;
    s += "\r\n";
  }
  s += "\r\n";
  return s;
}

void expect_error(std::string_view d, unsigned status, HeadLimits limits = {}) {
  HeadScan r = scan(d, limits);
  EXPECT_EQ(r.state, State::kError) << ::testing::PrintToString(std::string(d));
  EXPECT_EQ(r.status, status) << ::testing::PrintToString(std::string(d));
  EXPECT_STRNE(r.reason, "") << ::testing::PrintToString(std::string(d));
}

void expect_complete(std::string_view d, size_t head_length, HeadLimits limits = {}) {
  HeadScan r = scan(d, limits);
  EXPECT_EQ(r.state, State::kComplete)
      << ::testing::PrintToString(std::string(d)) << " status " << r.status << " " << r.reason;
  EXPECT_EQ(r.head_length, head_length) << ::testing::PrintToString(std::string(d));
}

TEST(RequestHead, ValidGet) {
  const std::string head = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
  HeadScan r = scan(head);
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.head_length, head.size());
  EXPECT_EQ(r.status, 0u);
  EXPECT_FALSE(r.http10);
  EXPECT_FALSE(r.chunked);
  EXPECT_FALSE(r.has_content_length);
  EXPECT_EQ(r.content_length, 0u);
  EXPECT_FALSE(r.expect_continue);
}

TEST(RequestHead, HeadLengthWithBodyAndPipelinedRequest) {
  const std::string head =
      "POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n";
  const std::string next = "GET /second HTTP/1.1\r\nHost: example.com\r\n\r\n";
  HeadScan r = scan(head + "hello" + next);
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.head_length, head.size());
  EXPECT_TRUE(r.has_content_length);
  EXPECT_EQ(r.content_length, 5u);

  const std::string get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  expect_complete(get + next, get.size());
  // Body bytes that look like a broken head are not looked at.
  expect_complete(head + "\0\r\r\n :x"s, head.size());
}

TEST(RequestHead, MinimalHeads) {
  expect_complete("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
  expect_complete("GET / HTTP/1.0\r\n\r\n", 18);
  HeadScan r = scan("GET / HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(r.http10);
  expect_complete("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 31);
  expect_complete("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 59);
  expect_complete("GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 36);
}

TEST(RequestHead, Incomplete) {
  const std::string full = "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\n\r\n";
  // Every strict prefix is incomplete, never an error.
  for (size_t n = 0; n < full.size(); ++n) {
    HeadScan r = scan(std::string_view(full).substr(0, n));
    EXPECT_EQ(r.state, State::kIncomplete) << n;
    EXPECT_EQ(r.status, 0u) << n;
  }
  expect_complete(full, full.size());
}

TEST(RequestHead, IncompleteAtExactLimits) {
  // A head whose request line is exactly max_request_line and whose size is
  // exactly max_header_bytes is accepted; so every prefix of it (however
  // the bytes are split into reads) must be kIncomplete, never an error.
  HeadLimits limits;
  limits.max_request_line = 40;
  limits.max_header_bytes = 80;
  const std::string line = "GET /" + std::string(40 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(line.size(), 40u);
  std::string full = line + "\r\nHost: a\r\nX: ";
  full += std::string(80 - full.size() - 4, 'v') + "\r\n\r\n";
  ASSERT_EQ(full.size(), 80u);
  expect_complete(full, 80, limits);
  for (size_t n = 0; n < full.size(); ++n) {
    HeadScan r = scan(std::string_view(full).substr(0, n), limits);
    EXPECT_EQ(r.state, State::kIncomplete) << n << " status " << r.status << " " << r.reason;
  }
  // One byte more on the request line is refused as soon as it is known.
  const std::string longer = "GET /" + std::string(40 - 13, 'a') + " HTTP/1.1";
  expect_error(longer + "\r", 414, limits);
  expect_error(longer.substr(0, 41), 414, limits);
}

TEST(RequestHead, FieldsAreCaseInsensitiveAndValuesTrimmed) {
  HeadScan r = scan(req("content-LENGTH: \t 42 \t", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.content_length, 42u);
  r = scan(req("TRANSFER-ENCODING: Chunked", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_TRUE(r.chunked);
  expect_complete("GET / HTTP/1.1\r\nhOsT: a\r\n\r\n", 27);
}

TEST(RequestHead, ContentLengthZeroAndLarge) {
  HeadScan r = scan(req("Content-Length: 0", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_TRUE(r.has_content_length);
  EXPECT_EQ(r.content_length, 0u);
  r = scan(req("Content-Length: 000123", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.content_length, 123u);
  r = scan(req("Content-Length: 999999999999999999", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.content_length, 999999999999999999u);
  // Past what fits: refused, never wrapped around.
  expect_error(req("Content-Length: 99999999999999999999999", "POST / HTTP/1.1"), 400);
  expect_error(req("Content-Length: 18446744073709551621", "POST / HTTP/1.1"), 400);
}

TEST(RequestHead, ChunkedFraming) {
  HeadScan r = scan(req("Transfer-Encoding: chunked", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_TRUE(r.chunked);
  EXPECT_FALSE(r.has_content_length);
}

TEST(RequestHead, IdenticalDuplicateContentLengthAccepted) {
  HeadScan r = scan(req("Content-Length: 7\r\nContent-Length: 7", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_TRUE(r.has_content_length);
  EXPECT_EQ(r.content_length, 7u);
  EXPECT_EQ(r.content_length_fields, 2u);  // forwarded as one
}

TEST(RequestHead, FragmentAndRawNonAsciiInTargetAre400) {
  for (const char* line : {"GET /a#frag HTTP/1.1", "GET /#x HTTP/1.1", "GET /caf\xc3\xa9 HTTP/1.1",
                           "GET /\x80 HTTP/1.1", "GET /?q=\xff HTTP/1.1"})
    expect_error(req("", line), 400);
  // Percent-encoded forms are the legal spelling and pass.
  expect_complete(req("", "GET /caf%C3%A9?a=%23 HTTP/1.1"), req("", "GET /caf%C3%A9?a=%23 HTTP/1.1").size());
}

TEST(RequestHead, ContentLengthAndTransferEncoding) {
  expect_error(req("Content-Length: 5\r\nTransfer-Encoding: chunked", "POST / HTTP/1.1"), 400);
  expect_error(req("Transfer-Encoding: chunked\r\nContent-Length: 5", "POST / HTTP/1.1"), 400);
  expect_error(req("Transfer-Encoding: chunked\r\nContent-Length: 0", "POST / HTTP/1.1"), 400);
}

TEST(RequestHead, DifferingContentLengths) {
  expect_error(req("Content-Length: 5\r\nContent-Length: 6", "POST / HTTP/1.1"), 400);
  expect_error(req("Content-Length: 5\r\nX: y\r\nContent-Length: 50", "POST / HTTP/1.1"), 400);
  // A list in one field is not plain digits either.
  expect_error(req("Content-Length: 5, 5", "POST / HTTP/1.1"), 400);
  expect_error(req("Content-Length: 5,6", "POST / HTTP/1.1"), 400);
}

TEST(RequestHead, ContentLengthNotPlainDigits) {
  for (const char* v : {"+5", "5 5", "0x5", "-1", "", " ", "5a", "a5", "1e3", "5.0", "\"5\"",
                        "\xd9\xa5"})
    expect_error(req("Content-Length: "s + v, "POST / HTTP/1.1"), 400);
  expect_error(req("Content-Length:", "POST / HTTP/1.1"), 400);
}

TEST(RequestHead, TransferEncodingOtherThanFinalChunked) {
  for (const char* v : {"chunked, identity", "identity", "chunked, chunked", "chunked,chunked",
                        "chunked, gzip", ""})
    expect_error(req("Transfer-Encoding: "s + v, "POST / HTTP/1.1"), 400);
  // Over several fields: the list is their concatenation.
  expect_error(req("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "POST / HTTP/1.1"),
               400);
  expect_error(req("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity", "POST / HTTP/1.1"),
               400);
  // A look-alike is not chunked.
  expect_error(req("Transfer-Encoding: xchunked", "POST / HTTP/1.1"), 400);
  expect_error(req("Transfer-Encoding: chunked;q=1", "POST / HTTP/1.1"), 400);
}

TEST(RequestHead, TransferEncodingOnHttp10) {
  expect_error(req("Transfer-Encoding: chunked", "POST / HTTP/1.0", false), 400);
  expect_error(req("Transfer-Encoding: chunked", "POST / HTTP/1.0", true), 400);
}

TEST(RequestHead, UnknownCodingBeforeChunkedIs501) {
  expect_error(req("Transfer-Encoding: gzip, chunked", "POST / HTTP/1.1"), 501);
  expect_error(req("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", "POST / HTTP/1.1"),
               501);
}

TEST(RequestHead, SpaceBeforeColon) {
  expect_error(req("Content-Length : 5", "POST / HTTP/1.1"), 400);
  expect_error(req("Transfer-Encoding\t: chunked", "POST / HTTP/1.1"), 400);
  expect_error("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
}

TEST(RequestHead, MalformedFieldLines) {
  expect_error(req(": nameless"), 400);
  expect_error(req("NoColonHere"), 400);
  expect_error(req("Bad(Name): x"), 400);
  expect_error(req("Bad Name: x"), 400);
}

TEST(RequestHead, ObsFold) {
  expect_error(req("X-A: one\r\n two"), 400);
  expect_error(req("X-A: one\r\n\ttwo"), 400);
  // Folding a framing field is the dangerous case.
  expect_error(req("Transfer-Encoding: gzip,\r\n chunked", "POST / HTTP/1.1"), 400);
  // A first field line that starts with white space.
  expect_error("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400);
}

TEST(RequestHead, ControlBytesInValues) {
  expect_error(req("X-A: a\0b"s), 400);
  expect_error(req("X-A: a\rb"), 400);
  expect_error(req("X-A: a\x7f"), 400);
  for (int c = 1; c < 0x20; ++c) {
    if (c == '\t' || c == '\r' || c == '\n') continue;
    expect_error(req("X-A: a"s + static_cast<char>(c) + "b"), 400);
  }
  // HTAB and obs-text are allowed.
  expect_complete(req("X-A: a\tb\x80\xff"), req("X-A: a\tb\x80\xff").size());
  // A bare CR right before the end of the head.
  expect_error("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400);
  expect_error("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400);
}

TEST(RequestHead, BareLfLineEndings) {
  expect_error("GET / HTTP/1.1\nHost: a\n\n", 400);
  expect_error("GET / HTTP/1.1\r\nHost: a\n\r\n", 400);
  expect_error("GET / HTTP/1.1\r\nHost: a\r\n\n", 400);
  expect_error("GET / HTTP/1.1\r\nHost: a\r\nX: 1\nContent-Length: 5\r\n\r\n", 400);
  // Detected even before the head is complete.
  expect_error("GET / HTTP/1.1\r\nHost: a\nX", 400);
}

TEST(RequestHead, BareCrInRequestLine) {
  expect_error("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

TEST(RequestHead, Host) {
  expect_error(req("", "GET / HTTP/1.1", false), 400);
  expect_complete(req("", "GET / HTTP/1.0", false), 18);
  expect_error(req("Host: example.com"), 400);
  expect_error(req("host: other.example"), 400);
  expect_error(req("Host: example.com", "GET / HTTP/1.0"), 400);
}

TEST(RequestHead, BadRequestLine) {
  for (const char* line :
       {"G(T / HTTP/1.1", "GE T / HTTP/1.1", "G\x01T / HTTP/1.1", "G@T / HTTP/1.1",
        "G\xc3\xa9T / HTTP/1.1", " GET / HTTP/1.1", "GET  / HTTP/1.1", "GET / HTTP/1.1 ",
        "GET /a b HTTP/1.1", "GET /\x7f HTTP/1.1", "GET /\x01 HTTP/1.1", "GET /\t HTTP/1.1",
        "GET / HTTP/2.0", "GET / HTTP/1.1x", "GET / HTTP/1.2", "GET / http/1.1", "GET / HTTP/1",
        "GET / ", "GET /", "GET", "/ HTTP/1.1", "GET / HTTP/1.1\t", "GET\t/ HTTP/1.1"})
    expect_error(req("", line), 400);
}

TEST(RequestHead, MethodTokens) {
  expect_complete(req("", "M-SEARCH * HTTP/1.1"), req("", "M-SEARCH * HTTP/1.1").size());
  expect_complete(req("", "PROPFIND / HTTP/1.1"), req("", "PROPFIND / HTTP/1.1").size());
}

TEST(RequestHead, RequestLineTooLong) {
  HeadLimits limits;
  limits.max_request_line = 64;
  const std::string ok_line = "GET /" + std::string(64 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(ok_line.size(), 64u);
  expect_complete(req("", ok_line), req("", ok_line).size(), limits);
  const std::string long_line = "GET /" + std::string(65 - 14, 'a') + " HTTP/1.1";
  expect_error(req("", long_line), 414, limits);
  // Still incomplete, but already longer than the limit allows.
  expect_error("GET /" + std::string(100, 'a'), 414, limits);
  expect_error(std::string(65, 'a'), 414, limits);
  EXPECT_EQ(scan("GET /" + std::string(50, 'a'), limits).state, State::kIncomplete);
  // The default limit (8 KiB).
  expect_error(req("", "GET /" + std::string(9000, 'a') + " HTTP/1.1"), 414);
  expect_error("GET /" + std::string(9000, 'a'), 414);
}

TEST(RequestHead, TooManyFields) {
  HeadLimits limits;
  limits.max_headers = 5;
  std::string four;
  for (int i = 0; i < 4; ++i) four += "X-" + std::to_string(i) + ": v\r\n";
  // Host + 4 = 5 fields: fine.
  std::string ok = "GET / HTTP/1.1\r\nHost: a\r\n" + four + "\r\n";
  expect_complete(ok, ok.size(), limits);
  std::string bad = "GET / HTTP/1.1\r\nHost: a\r\n" + four + "X-5: v\r\n\r\n";
  expect_error(bad, 431, limits);
  // Default: 100.
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  expect_error(many + "\r\n", 431);
  // Detected before the head is complete.
  expect_error(many, 431);
}

TEST(RequestHead, HeadTooLarge) {
  HeadLimits limits;
  limits.max_header_bytes = 100;
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  head += std::string(100 - head.size() - 4, 'v');
  head += "\r\n\r\n";
  ASSERT_EQ(head.size(), 100u);
  expect_complete(head, 100, limits);
  std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(100, 'v') + "\r\n\r\n";
  expect_error(big, 431, limits);
  // One byte over, in the final CRLF.
  std::string over = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(69, 'v') + "\r\n\r\n";
  ASSERT_EQ(over.size(), 101u);
  expect_error(over, 431, limits);
  // Incomplete but already too large.
  expect_error("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(200, 'v'), 431, limits);
  expect_error("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(200, 'v') + "\r\n", 431, limits);
  // A complete head under the limit followed by a large body is fine.
  const std::string small = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n";
  expect_complete(small + std::string(1000, 'b'), small.size(), limits);
  // Default 32 KiB.
  expect_error(req("X: " + std::string(40 * 1024, 'v')), 431);
  expect_error("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(40 * 1024, 'v'), 431);
}

TEST(RequestHead, ExpectContinue) {
  HeadScan r = scan(req("Expect: 100-continue\r\nContent-Length: 3", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_TRUE(r.expect_continue);
  r = scan(req("expect:  100-Continue ", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_TRUE(r.expect_continue);
  r = scan(req("Expect: something-else", "POST / HTTP/1.1"));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_FALSE(r.expect_continue);
}

TEST(LeadingEmptyLines, Counts) {
  EXPECT_EQ(leading_empty_lines(""), 0u);
  EXPECT_EQ(leading_empty_lines("GET / HTTP/1.1\r\n"), 0u);
  EXPECT_EQ(leading_empty_lines("\r\nGET"), 2u);
  EXPECT_EQ(leading_empty_lines("\r\n\r\nGET"), 4u);
  EXPECT_EQ(leading_empty_lines("\n\r\n\nGET"), 4u);
  EXPECT_EQ(leading_empty_lines("\r\n\r\n"), 4u);
  // A CR not (yet) followed by LF is not skipped.
  EXPECT_EQ(leading_empty_lines("\r\n\r"), 2u);
  EXPECT_EQ(leading_empty_lines("\rGET"), 0u);
  EXPECT_EQ(leading_empty_lines(" \r\n"), 0u);
  const std::string data = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  size_t skip = leading_empty_lines(data);
  HeadScan r = scan(std::string_view(data).substr(skip));
  ASSERT_EQ(r.state, State::kComplete);
  EXPECT_EQ(r.head_length, data.size() - 4);
}

}  // namespace
}  // namespace sag::session
