#include "session/chunked_decoder.h"

#include <string>

#include <gtest/gtest.h>

namespace sag::session {
namespace {

using Error = ChunkedDecoder::Error;

struct Outcome {
  std::string data;
  size_t consumed = 0;
  bool done = false;
  Error error = Error::kNone;
};

// Feeds `wire` in pieces of `piece` bytes into an output of `out_cap`.
Outcome run(const std::string& wire, size_t piece = SIZE_MAX, size_t out_cap = 64,
            ChunkedDecoder::Limits limits = {}) {
  ChunkedDecoder d(limits);
  Outcome o;
  std::string out(out_cap, '\0');
  size_t off = 0;
  while (off < wire.size() && !d.done() && !d.failed()) {
    const size_t n = std::min(piece, wire.size() - off);
    std::string_view in(wire.data() + off, n);
    // The caller keeps unconsumed bytes and offers them again.
    for (;;) {
      auto step = d.decode(in, out.data(), out.size());
      o.data.append(out.data(), step.produced);
      off += step.consumed;
      in.remove_prefix(step.consumed);
      if (in.empty() || d.done() || d.failed() || step.produced == 0) break;
    }
  }
  o.consumed = off;
  o.done = d.done();
  o.error = d.error();
  return o;
}

TEST(ChunkedDecoderTest, DecodesWholeAndByteByByte) {
  const std::string wire = "5\r\nhello\r\n1;a=b;c=\"q\\\"x\"\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n";
  for (size_t piece : {size_t{1}, size_t{2}, size_t{7}, SIZE_MAX}) {
    for (size_t cap : {size_t{1}, size_t{3}, size_t{64}}) {
      auto o = run(wire, piece, cap);
      EXPECT_TRUE(o.done) << piece << "/" << cap;
      EXPECT_EQ(o.error, Error::kNone);
      EXPECT_EQ(o.data, "hello 0123456789");
      EXPECT_EQ(o.consumed, wire.size());
    }
  }
}

TEST(ChunkedDecoderTest, StopsAtTheEndOfTheBody) {
  const std::string body = "3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
  auto o = run(body + "GET / HTTP/1.1\r\n");
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.consumed, body.size());
  EXPECT_EQ(o.data, "abc");
}

TEST(ChunkedDecoderTest, LeadingZerosAndUppercaseHex) {
  auto o = run("0005\r\nhello\r\n00A\r\n0123456789\r\n000\r\n\r\n");
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.data, "hello0123456789");
}

TEST(ChunkedDecoderTest, EndlessExtensionFailsAtTheCap) {
  ChunkedDecoder::Limits l;
  l.max_line = 100;
  std::string wire = "5;x=" + std::string(10000, 'a');
  auto o = run(wire, 512, 64, l);
  EXPECT_EQ(o.error, Error::kLineTooLong);
  EXPECT_LE(o.consumed, 100u);
  EXPECT_EQ(info(ChunkedDecoder::gateway_error(o.error)).status, 400u);
}

TEST(ChunkedDecoderTest, EndlessLeadingZerosFailAtTheCap) {
  ChunkedDecoder::Limits l;
  l.max_line = 100;
  auto o = run(std::string(5000, '0'), 64, 64, l);
  EXPECT_EQ(o.error, Error::kLineTooLong);
}

TEST(ChunkedDecoderTest, HugeSizesAreRefused) {
  EXPECT_EQ(run("ffffffffffffffff\r\n").error, Error::kSizeTooLarge);
  EXPECT_EQ(run("1" + std::string(32, '0') + "\r\n").error, Error::kSizeTooLarge);
  EXPECT_EQ(run("10000000000001\r\n").error, Error::kSizeTooLarge);  // 2^52 + 1
  // 2^52 itself is allowed (the decoder only waits for its bytes).
  auto o = run("10000000000000\r\nabc");
  EXPECT_EQ(o.error, Error::kNone);
  EXPECT_EQ(o.data, "abc");
}

TEST(ChunkedDecoderTest, EndlessTrailersFailAt431) {
  ChunkedDecoder::Limits l;
  l.max_trailers = 1000;
  std::string wire = "0\r\n";
  for (int i = 0; i < 200; ++i) wire += "X-Trailer-" + std::to_string(i) + ": value\r\n";
  auto o = run(wire, 100, 64, l);
  EXPECT_EQ(o.error, Error::kTrailersTooLarge);
  EXPECT_LE(o.consumed, 3u + 1000u);
  EXPECT_EQ(info(ChunkedDecoder::gateway_error(o.error)).status, 431u);
  // One endless trailer line too.
  o = run("0\r\nX: " + std::string(5000, 'v'), 100, 64, l);
  EXPECT_EQ(o.error, Error::kTrailersTooLarge);
}

TEST(ChunkedDecoderTest, MaxBodyCountsDeclaredSizes) {
  ChunkedDecoder::Limits l;
  l.max_body = 10;
  EXPECT_EQ(run("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", SIZE_MAX, 64, l).error, Error::kNone);
  auto o = run("5\r\nhello\r\n6\r\n", SIZE_MAX, 64, l);
  EXPECT_EQ(o.error, Error::kBodyTooLarge);
  EXPECT_EQ(info(ChunkedDecoder::gateway_error(o.error)).status, 413u);
}

TEST(ChunkedDecoderTest, MalformedFramingIsRefused) {
  const char* bad[] = {
      "zz\r\n",                  // not hex
      "-1\r\n",                  // sign
      "0x5\r\nhello\r\n",        // C-style prefix
      "5 x\r\nhello\r\n",        // junk after the size
      "5\nhello\r\n",            // bare LF after the size
      "5\r\nhelloXX0\r\n\r\n",   // data not followed by CRLF
      "5\r\nhello\n0\r\n\r\n",   // bare LF after data
      "5;a\x01\r\n",             // control byte in an extension
      "5;a=\"x\x7f\"\r\n",       // DEL in a quoted value
      "\r\n",                    // no size at all
      "0\r\n X: folded\r\n\r\n", // obs-fold in trailers
      "0\r\nX : 1\r\n\r\n",      // space before the colon
      "0\r\nNoColon\r\n\r\n",
      "0\r\nX: a\rb\r\n\r\n",    // bare CR in a trailer
      "0\r\n\r\r",               // final CRLF broken
  };
  for (const char* w : bad) {
    auto o = run(w);
    EXPECT_EQ(o.error, Error::kBadSyntax) << w;
    EXPECT_FALSE(o.done) << w;
  }
}

TEST(ChunkedDecoderTest, WhitespaceBeforeExtensionsIsAccepted) {
  auto o = run("5 ;a=b\r\nhello\r\n0\r\n\r\n");
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.data, "hello");
}

}  // namespace
}  // namespace sag::session
