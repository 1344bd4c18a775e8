// Building the forwarded request from a scanned head (session/request_fill.h).
#include "session/request_fill.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "session/head_writer.h"
#include "session/request_head.h"

namespace sag::session {
namespace {

namespace http = boost::beast::http;

TEST(RequestFillTest, TakesMethodTargetVersionAndEveryFieldInOrder) {
  const std::string head =
      "POST /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nCookie: x=1\r\nCookie: y=2\r\n"
      "X-Empty:\r\nX-Pad: \t v a l \t\r\nContent-Length: 3\r\n\r\n";
  const HeadScan scan = scan_request_head(head, HeadLimits{});
  ASSERT_EQ(scan.state, HeadScan::State::kComplete);
  RequestHeader req;
  fill_request(std::string_view(head).substr(0, scan.head_length), req);
  EXPECT_EQ(req.method(), http::verb::post);
  EXPECT_EQ(req.target(), "/a/b?c=d");
  EXPECT_EQ(req.version(), 11u);
  std::vector<std::pair<std::string, std::string>> fields;
  for (const auto& f : req) fields.emplace_back(f.name_string(), f.value());
  const std::vector<std::pair<std::string, std::string>> want = {
      {"Host", "example.com"}, {"Cookie", "x=1"}, {"Cookie", "y=2"},
      {"X-Empty", ""},         {"X-Pad", "v a l"}, {"Content-Length", "3"}};
  EXPECT_EQ(fields, want);
}

// Fields written "Name: value" are filed where they lie in the head and
// copied once; the request must not refer to the head afterwards, and must
// write out every field as "Name: value" whichever way it was spelt.
TEST(RequestFillTest, OwnsItsFieldsOnceTheHeadIsGone) {
  auto head = std::make_unique<std::string>(
      "GET / HTTP/1.1\r\nHost: a.example\r\nX-Tight:1\r\nX-Empty: \r\nX-Bare:\r\n"
      "X-Wide:  2 \r\nAccept: */*\r\nUser-Agent: t/1\r\n\r\n");
  const HeadScan scan = scan_request_head(*head, HeadLimits{});
  ASSERT_EQ(scan.state, HeadScan::State::kComplete);
  RequestHeader req;
  fill_request(std::string_view(*head).substr(0, scan.head_length), req);
  std::fill(head->begin(), head->end(), '#');
  head.reset();
  std::vector<std::pair<std::string, std::string>> fields;
  for (const auto& f : req) fields.emplace_back(f.name_string(), f.value());
  const std::vector<std::pair<std::string, std::string>> want = {
      {"Host", "a.example"}, {"X-Tight", "1"}, {"X-Empty", ""},         {"X-Bare", ""},
      {"X-Wide", "2"},       {"Accept", "*/*"}, {"User-Agent", "t/1"}};
  EXPECT_EQ(fields, want);
  EXPECT_EQ(req[http::field::host], "a.example");
  EXPECT_EQ(req[http::field::user_agent], "t/1");
  char out[512];
  const size_t n = write_head(req, out, sizeof out);
  EXPECT_EQ(std::string_view(out, n),
            "GET / HTTP/1.1\r\nHost: a.example\r\nX-Tight: 1\r\nX-Empty: \r\nX-Bare: \r\n"
            "X-Wide: 2\r\nAccept: */*\r\nUser-Agent: t/1\r\n\r\n");
}

TEST(RequestFillTest, UnknownMethodAndHttp10AreKept) {
  const std::string head = "PURGE * HTTP/1.0\r\n\r\n";
  const HeadScan scan = scan_request_head(head, HeadLimits{});
  ASSERT_EQ(scan.state, HeadScan::State::kComplete);
  RequestHeader req;
  fill_request(head, req);
  EXPECT_EQ(req.method_string(), "PURGE");
  EXPECT_EQ(req.target(), "*");
  EXPECT_EQ(req.version(), 10u);
  EXPECT_EQ(req.begin(), req.end());
}

}  // namespace
}  // namespace sag::session
