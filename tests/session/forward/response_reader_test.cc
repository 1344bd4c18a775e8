// The server-response parser (session/forward/response_reader.h): head
// fields and status, framing per RFC 9112 §6.3, keep-alive, the strict
// refusals, and bodies fed in pieces of every size.
#include "session/forward/response_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <string_view>

#include <boost/beast/http/error.hpp>

namespace sag::session {
namespace {

namespace http = boost::beast::http;
using Framing = ResponseReader::Framing;

struct Parsed {
  size_t used = 0;
  boost::system::error_code ec;
};

Parsed head(ResponseReader& r, Response& res, std::string_view in, bool head_request = false) {
  Parsed p;
  p.used = r.parse_head(in, head_request, res, p.ec);
  return p;
}

// Feeds `body` (what follows the head) in pieces of `piece` bytes into an
// output of `cap` bytes at a time; returns the decoded body and the input
// left unused. Stops at done() or an error.
std::string decode_all(ResponseReader& r, std::string_view body, size_t piece, size_t cap,
                       boost::system::error_code& ec, size_t* unused = nullptr) {
  std::string out;
  std::string pending;
  size_t fed = 0;
  while (!r.done()) {
    if (fed < body.size()) {
      const size_t n = std::min(piece, body.size() - fed);
      pending.append(body.substr(fed, n));
      fed += n;
    } else if (pending.empty()) {
      break;
    }
    for (;;) {
      std::string buf(cap, '\0');
      size_t produced = 0;
      const size_t used = r.decode(pending, buf.data(), cap, produced, ec);
      pending.erase(0, used);
      out.append(buf.data(), produced);
      if (ec) return out;
      if (produced == 0 || r.done()) break;
    }
    if (fed >= body.size() && !r.done()) break;
  }
  if (unused) *unused = pending.size() + (body.size() - fed);
  return out;
}

TEST(ResponseReaderTest, ParsesStatusReasonVersionAndFields) {
  ResponseReader r;
  Response res;
  const std::string in =
      "HTTP/1.1 201 Created Here\r\nX-Server: s1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
      "Content-Length: 5\r\nx-odd-Case:  padded \t\r\n\r\nhello";
  const auto p = head(r, res, in);
  ASSERT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.used, in.size() - 5);
  EXPECT_EQ(res.result_int(), 201u);
  EXPECT_EQ(res.reason(), "Created Here");
  EXPECT_EQ(res.version(), 11u);
  EXPECT_EQ(res["X-Server"], "s1");
  EXPECT_EQ(res.count(http::field::set_cookie), 2u);
  EXPECT_EQ(res["X-Odd-Case"], "padded");
  EXPECT_EQ(r.framing(), Framing::kLength);
  EXPECT_EQ(r.content_length(), 5u);
  EXPECT_TRUE(r.keep_alive());
  EXPECT_FALSE(r.done());
}

TEST(ResponseReaderTest, IncompleteHeadAsksForMoreAtEveryCut) {
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  for (size_t cut = 0; cut < in.size(); ++cut) {
    ResponseReader r;
    Response res;
    const auto p = head(r, res, std::string_view(in).substr(0, cut));
    EXPECT_EQ(p.used, 0u) << cut;
    EXPECT_FALSE(p.ec) << cut << ": " << p.ec.message();
  }
  ResponseReader r;
  Response res;
  EXPECT_EQ(head(r, res, in).used, in.size());
  EXPECT_TRUE(r.done());
}

// A head dribbled into one buffer (the connection's input: bytes only
// appended, the start where it was) is parsed once across the calls: each
// goes on at the first line the last one found incomplete. The result is
// the one-shot parse's, field for field, and owns its bytes (the input is
// overwritten before the fields are read).
TEST(ResponseReaderTest, ADribbledHeadGoesOnWhereItStopped) {
  const std::string whole =
      "HTTP/1.1 200 OK\r\nX-A: 1\r\nx-odd:  padded \t\r\nConnection: close\r\n"
      "Content-Length: 3\r\nSet-Cookie: a=1\r\n\r\n";
  auto lines = [](const Response& res) {
    std::string out;
    for (const auto& f : res) out.append(f.line());
    return out;
  };
  ResponseReader one;
  Response want;
  ASSERT_EQ(head(one, want, whole).used, whole.size());
  for (size_t piece = 1; piece <= whole.size(); ++piece) {
    std::string in;
    in.reserve(whole.size());  // never moves: every call after the first resumes
    ResponseReader r;
    Response res;
    Parsed p;
    for (size_t fed = 0; fed < whole.size() && p.used == 0 && !p.ec;) {
      const size_t n = std::min(piece, whole.size() - fed);
      in.append(whole, fed, n);
      fed += n;
      p = head(r, res, in);
    }
    ASSERT_FALSE(p.ec) << piece << ": " << p.ec.message();
    EXPECT_EQ(p.used, whole.size()) << piece;
    in.assign(in.size(), '#');
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.reason(), "OK");
    EXPECT_EQ(lines(res), lines(want)) << piece;
    EXPECT_EQ(res["X-Odd"], "padded") << piece;
    EXPECT_EQ(r.content_length(), 3u) << piece;
    EXPECT_EQ(r.framing(), Framing::kLength);
    EXPECT_FALSE(r.keep_alive()) << piece << ": Connection: close came before a cut";
  }
}

// Many fields, a line per read (the entries outgrow their first block
// between calls).
TEST(ResponseReaderTest, AHeadOfManyFieldsComesALineAtATime) {
  std::string in;
  in.reserve(32 * 1024);
  ResponseReader r;
  Response res;
  in = "HTTP/1.1 200 OK\r\nX-Server: s1\r\n";
  Parsed p = head(r, res, in);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(p.used, 0u);
    ASSERT_FALSE(p.ec) << i << ": " << p.ec.message();
    in += "X-D" + std::to_string(i) + ": " + std::to_string(i) + "\r\n";
    p = head(r, res, in);
  }
  in += "Content-Length: 3\r\n\r\n";
  p = head(r, res, in);
  ASSERT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.used, in.size());
  EXPECT_EQ(std::distance(res.begin(), res.end()), 1002);
  EXPECT_EQ(res["X-Server"], "s1");
  EXPECT_EQ(res["X-D0"], "0");
  EXPECT_EQ(res["X-D999"], "999");
  EXPECT_EQ(r.content_length(), 3u);
}

// What lines before a cut said counts after it, as in one read: framing
// (Content-Length, then Transfer-Encoding; a coding, then Content-Length)
// and an HTTP/1.0 server's keep-alive.
TEST(ResponseReaderTest, FramingFactsCarryAcrossACut) {
  struct Case {
    const char* before;
    const char* after;
    http::error want;  // {} : valid
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-", "Encoding: chunked\r\n\r\n",
       http::error::bad_transfer_encoding},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-", "Length: 3\r\n\r\n",
       http::error::bad_transfer_encoding},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-", "Encoding: gzip\r\n\r\n",
       http::error::bad_transfer_encoding},
  };
  for (const Case& c : cases) {
    std::string in;
    in.reserve(256);
    ResponseReader r;
    Response res;
    in = c.before;
    ASSERT_EQ(head(r, res, in).used, 0u) << c.before;
    in += c.after;
    EXPECT_EQ(head(r, res, in).ec, http::make_error_code(c.want)) << c.before << c.after;
  }
  std::string in;
  in.reserve(256);
  ResponseReader r;
  Response res;
  in = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nX-";
  ASSERT_EQ(head(r, res, in).used, 0u);
  in += "A: 1\r\n\r\n";
  ASSERT_FALSE(head(r, res, in).ec);
  EXPECT_TRUE(r.keep_alive()) << "keep-alive (HTTP/1.0) came before the cut";
  EXPECT_EQ(r.framing(), Framing::kChunked) << "chunked came before the cut";
}

// The lines before a cut are not read again (that is what keeps a dribbled
// head linear): a byte changed there afterwards goes unseen while the input
// stays where it was, and is seen once the input moved (parsed afresh).
TEST(ResponseReaderTest, LinesBeforeACutAreNotReadAgain) {
  const std::string first = "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: ";
  const std::string rest = "2\r\nContent-Length: 0\r\n\r\n";
  std::string in;
  in.reserve(256);
  in = first;
  ResponseReader r;
  Response res;
  ASSERT_EQ(head(r, res, in).used, 0u);
  in[in.find("1\r\n")] = '\x01';  // no valid head would have it
  in += rest;
  const auto p = head(r, res, in);
  ASSERT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.used, in.size());
  EXPECT_EQ(res["X-B"], "2");

  ResponseReader moved;
  std::string a = first;
  ASSERT_EQ(head(moved, res, a).used, 0u);
  std::string b = a + rest;  // elsewhere: parsed from its start
  b[b.find("1\r\n")] = '\x01';
  EXPECT_EQ(head(moved, res, b).ec, http::make_error_code(http::error::bad_value));
}

TEST(ResponseReaderTest, StatusLineWithoutReasonIsAccepted) {
  ResponseReader r;
  Response res;
  const auto p = head(r, res, "HTTP/1.1 204\r\n\r\n");
  ASSERT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(res.result_int(), 204u);
  EXPECT_TRUE(r.done());
}

TEST(ResponseReaderTest, FramingFollowsRfc9112) {
  struct Case {
    std::string head;
    bool head_request;
    Framing framing;
    bool done;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false, Framing::kLength, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, Framing::kLength, true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true, Framing::kNone, true},
      {"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", false, Framing::kNone, true},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n", false, Framing::kNone, true},
      {"HTTP/1.1 100 Continue\r\n\r\n", false, Framing::kNone, true},
      {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false, Framing::kNone,
       true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, Framing::kChunked, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, Framing::kChunked,
       false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, Framing::kUntilClose, false},
      {"HTTP/1.1 200 OK\r\n\r\n", false, Framing::kUntilClose, false},
  };
  for (const auto& c : cases) {
    ResponseReader r;
    Response res;
    const auto p = head(r, res, c.head, c.head_request);
    ASSERT_FALSE(p.ec) << c.head << p.ec.message();
    EXPECT_EQ(r.framing(), c.framing) << c.head;
    EXPECT_EQ(r.done(), c.done) << c.head;
    if (c.framing == Framing::kUntilClose) {
      EXPECT_FALSE(r.keep_alive()) << c.head;
    }
  }
}

TEST(ResponseReaderTest, KeepAliveFollowsVersionAndConnection) {
  struct Case {
    std::string head;
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true},
      // Whole-value shortcut and list walk must agree.
      {"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alivf\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive2\r\nContent-Length: 0\r\n\r\n", false},
  };
  for (const auto& c : cases) {
    ResponseReader r;
    Response res;
    ASSERT_FALSE(head(r, res, c.head).ec) << c.head;
    EXPECT_EQ(r.keep_alive(), c.keep_alive) << c.head;
  }
}

TEST(ResponseReaderTest, RefusesWhatCouldEndTheResponseElsewhere) {
  const std::pair<std::string, http::error> cases[] = {
      {"HTTP/1.1 200 OK\nContent-Length: 0\n\n", http::error::bad_line_ending},
      {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", http::error::bad_value},
      {"HTTP/2.0 200 OK\r\n\r\n", http::error::bad_version},
      {"HTTX/1.1 200 OK\r\n\r\n", http::error::bad_version},
      {"HTTP/1.1 20 OK\r\n\r\n", http::error::bad_status},
      {"HTTP/1.1 2x0 OK\r\n\r\n", http::error::bad_status},
      {"HTTP/1.1 099 Low\r\n\r\n", http::error::bad_status},
      {"HTTP/1.1 200OK\r\n\r\n", http::error::bad_status},
      {"HTTP/1.1 200 O\x01K\r\n\r\n", http::error::bad_reason},
      {"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", http::error::bad_obs_fold},
      {"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n", http::error::bad_field},
      {"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", http::error::bad_field},
      {"HTTP/1.1 200 OK\r\nX-A: a\x7f\r\n\r\n", http::error::bad_value},
      {std::string("HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", 29), http::error::bad_value},
      {"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n", http::error::bad_content_length},
      {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", http::error::bad_content_length},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1,\r\n\r\n", http::error::bad_content_length},
      {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
       http::error::bad_content_length},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", http::error::multiple_content_length},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       http::error::multiple_content_length},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       http::error::bad_transfer_encoding},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
       http::error::bad_transfer_encoding},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
       http::error::bad_transfer_encoding},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       http::error::bad_transfer_encoding},
  };
  for (const auto& [in, want] : cases) {
    ResponseReader r;
    Response res;
    const auto p = head(r, res, in);
    EXPECT_EQ(p.used, 0u) << ::testing::PrintToString(in);
    EXPECT_EQ(p.ec, http::make_error_code(want))
        << ::testing::PrintToString(in) << " got " << p.ec.message();
  }
}

TEST(ResponseReaderTest, ABareLineEndFailsBeforeTheHeadIsComplete) {
  ResponseReader r;
  Response res;
  const auto p = head(r, res, "HTTP/1.1 200 OK\nX-A: 1\n");
  EXPECT_EQ(p.ec, http::make_error_code(http::error::bad_line_ending));
}

// Lines written as stored are filed where they lie and copied at once with
// the complete head; the others are stored anew. Either way each field's
// line is "Name: value\r\n", as the head is written out.
TEST(ResponseReaderTest, FieldsOfACompleteHeadKeepTheirLinesWhateverTheSpacing) {
  ResponseReader r;
  Response res;
  const std::string in =
      "HTTP/1.1 200 OK\r\nA: 1\r\nB:2\r\nC:   3  \r\nD:\r\nE: five five\r\n\r\n";
  const auto p = head(r, res, in);
  ASSERT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.used, in.size());
  std::string lines;
  for (const auto& f : res) lines += f.line();
  EXPECT_EQ(lines, "A: 1\r\nB: 2\r\nC: 3\r\nD: \r\nE: five five\r\n");
  EXPECT_EQ(res["E"], "five five");
  EXPECT_EQ(res["D"], "");
  // The input may go away: the fields live in the response's own storage.
  std::string copy = in;
  Response res2;
  ResponseReader r2;
  ASSERT_FALSE(head(r2, res2, copy).ec);
  copy.assign(copy.size(), 'x');
  EXPECT_EQ(res2["A"], "1");
  EXPECT_EQ(res2["C"], "3");
}

TEST(ResponseReaderTest, ABareLineEndInsideACompleteHeadFails) {
  for (const std::string in : {"HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n",
                               "HTTP/1.1 200 OK\r\n\nX-B: 2\r\n\r\n"}) {
    ResponseReader r;
    Response res;
    const auto p = head(r, res, in);
    EXPECT_EQ(p.ec, http::make_error_code(http::error::bad_line_ending)) << in;
    EXPECT_EQ(p.used, 0u);
  }
}

TEST(ResponseReaderTest, EqualContentLengthsCountAsOne) {
  ResponseReader r;
  Response res;
  ASSERT_FALSE(head(r, res, "HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\nContent-Length: 4\r\n\r\n").ec);
  EXPECT_EQ(r.content_length(), 4u);
}

TEST(ResponseReaderTest, LengthBodyInEveryPieceSizeStopsAtItsEnd) {
  const std::string body = "0123456789abcdef";
  for (size_t piece = 1; piece <= body.size() + 4; ++piece) {
    for (size_t cap : {1u, 3u, 64u}) {
      ResponseReader r;
      Response res;
      ASSERT_FALSE(head(r, res, "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n").ec);
      boost::system::error_code ec;
      size_t unused = 0;
      // The next response's bytes follow the body: never taken as body.
      EXPECT_EQ(decode_all(r, body + "HTTP/1.1", piece, cap, ec, &unused), body);
      EXPECT_FALSE(ec);
      EXPECT_TRUE(r.done());
      EXPECT_EQ(unused, 8u) << piece << "/" << cap;
    }
  }
}

TEST(ResponseReaderTest, ChunkedBodyDecodesAndDropsTrailers) {
  const std::string body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  for (size_t piece : {1u, 2u, 7u, 100u}) {
    for (size_t cap : {1u, 4u, 64u}) {
      ResponseReader r;
      Response res;
      ASSERT_FALSE(head(r, res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").ec);
      EXPECT_EQ(r.direct_limit(cap), 0u);
      boost::system::error_code ec;
      size_t unused = 0;
      EXPECT_EQ(decode_all(r, body, piece, cap, ec, &unused), "hello world");
      EXPECT_FALSE(ec) << ec.message();
      EXPECT_TRUE(r.done());
      EXPECT_EQ(unused, 4u);
      EXPECT_TRUE(r.keep_alive());
    }
  }
}

TEST(ResponseReaderTest, BadChunkFramingIsAnError) {
  const std::string bodies[] = {"zz\r\n", "5\r\nhelloXX", std::string(5000, '0') + "1\r\n",
                                "20000000000000\r\n"};
  for (const std::string& body : bodies) {
    ResponseReader r;
    Response res;
    ASSERT_FALSE(head(r, res, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").ec);
    boost::system::error_code ec;
    decode_all(r, body, body.size(), 64, ec);
    EXPECT_EQ(ec, http::make_error_code(http::error::bad_chunk)) << body.substr(0, 20);
  }
}

TEST(ResponseReaderTest, DirectReadsNeverPassTheDeclaredEnd) {
  ResponseReader r;
  Response res;
  ASSERT_FALSE(head(r, res, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n").ec);
  EXPECT_EQ(r.direct_limit(4), 4u);
  r.consumed_direct(4);
  EXPECT_EQ(r.direct_limit(100), 6u);
  r.consumed_direct(6);
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.direct_limit(100), 0u);
}

TEST(ResponseReaderTest, EndOfInputEndsOnlyACloseDelimitedBody) {
  {
    ResponseReader r;
    Response res;
    ASSERT_FALSE(head(r, res, "HTTP/1.1 200 OK\r\n\r\n").ec);
    EXPECT_EQ(r.direct_limit(100), 100u);
    r.consumed_direct(50);
    EXPECT_FALSE(r.done());
    boost::system::error_code ec;
    r.end_of_input(ec);
    EXPECT_FALSE(ec);
    EXPECT_TRUE(r.done());
  }
  for (std::string h : {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"}) {
    ResponseReader r;
    Response res;
    ASSERT_FALSE(head(r, res, h).ec);
    boost::system::error_code ec;
    r.end_of_input(ec);
    EXPECT_EQ(ec, http::make_error_code(http::error::partial_message)) << h;
    EXPECT_FALSE(r.done());
  }
}

TEST(ResponseReaderTest, AReusedReaderForgetsThePreviousResponse) {
  ResponseReader r;
  Response res;
  ASSERT_FALSE(head(r, res, "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n").ec);
  ASSERT_FALSE(head(r, res, "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n").ec);
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(res.count("X-A"), 0u);
  EXPECT_EQ(r.framing(), Framing::kLength);
}

}  // namespace
}  // namespace sag::session
