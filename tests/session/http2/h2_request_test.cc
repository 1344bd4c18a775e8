// HTTP/2 request assembly (session/http2/h2_request.h) and the response
// head list (session/http2/head_list.h), without a connection.
#include "session/http2/h2_request.h"

#include <gtest/gtest.h>

#include <cctype>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "config/gateway_config.h"
#include "session/http2/h2_settings.h"
#include "session/http2/head_list.h"

namespace sag::session {
namespace {
namespace http = boost::beast::http;

class H2RequestTest : public ::testing::Test {
 protected:
  H2RequestTest() : group_(io_.get_executor()), st_(io_.get_executor(), group_, 1) {}
  void head(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
    for (auto [n, v] : fields) ASSERT_TRUE(take_h2_header(st_, n, v, limits_)) << n;
  }

  boost::asio::io_context io_;
  config::LimitsConfig limits_;
  DeadlineGroup group_;
  H2Stream st_;
};

TEST_F(H2RequestTest, PseudoHeadersBecomeTheRequest) {
  head({{":method", "POST"}, {":path", "/a?b"}, {":authority", "app.example"},
        {":scheme", "https"}, {"x-one", "1"}});
  EXPECT_FALSE(finish_h2_request(st_, limits_, /*has_body=*/false));
  EXPECT_EQ(st_.req.method(), http::verb::post);
  EXPECT_EQ(st_.req.target(), "/a?b");
  EXPECT_EQ(st_.req[http::field::host], "app.example");
  EXPECT_EQ(st_.req["x-one"], "1");
  EXPECT_EQ(st_.x.method, "POST");
  EXPECT_EQ(st_.x.path, "/a?b");
  EXPECT_FALSE(st_.req.chunked());
}

// A session reuses stream objects: nothing of the previous stream's request,
// flags or exchange may reach the next one.
TEST_F(H2RequestTest, ReuseStartsFromNothing) {
  head({{":method", "POST"}, {":path", "/first"}, {":authority", "a"}, {"cookie", "SRV=x"},
        {"x-secret", "1"}});
  EXPECT_FALSE(finish_h2_request(st_, limits_, true));
  st_.in = "body";
  st_.in_off = 2;
  st_.end_stream_in = st_.submitted = st_.closed = st_.started = st_.done = true;
  st_.x.status = 200;
  st_.x.bytes = 99;
  st_.sig.notify();
  st_.reuse(3);
  EXPECT_EQ(st_.id, 3);
  EXPECT_TRUE(st_.req.target().empty());
  EXPECT_EQ(st_.req.begin(), st_.req.end());
  EXPECT_TRUE(st_.in.empty() && st_.authority.empty() && st_.cookie.empty() && st_.host.empty());
  EXPECT_EQ(st_.in_off, 0u);
  EXPECT_FALSE(st_.end_stream_in || st_.submitted || st_.closed || st_.started || st_.done ||
               st_.has_method || st_.has_path || st_.has_host);
  EXPECT_EQ(st_.x.status, 0u);
  EXPECT_EQ(st_.x.bytes, 0u);
  EXPECT_TRUE(st_.x.method.empty() && st_.x.path.empty());
  // The notification of the old stream is gone: a wait times out.
  bool woken = true;
  boost::asio::co_spawn(
      io_, [&]() -> boost::asio::awaitable<void> { woken = co_await st_.sig.wait_until({}); },
      boost::asio::detached);
  io_.run();
  EXPECT_FALSE(woken);
  head({{":method", "GET"}, {":path", "/second"}, {":authority", "b"}});
  EXPECT_FALSE(finish_h2_request(st_, limits_, false));
  EXPECT_EQ(st_.req.target(), "/second");
  EXPECT_EQ(st_.req.count(http::field::cookie), 0u);
  EXPECT_EQ(st_.req.count("x-secret"), 0u);
}

TEST_F(H2RequestTest, CookieCrumbsAreJoined) {
  head({{":method", "GET"}, {":path", "/"}, {":authority", "a"}, {"cookie", "a=1"},
        {"cookie", "b=2"}});
  EXPECT_FALSE(finish_h2_request(st_, limits_, false));
  EXPECT_EQ(st_.req[http::field::cookie], "a=1; b=2");
}

TEST_F(H2RequestTest, HostWithoutAuthorityAndTwoHostsIsMalformed) {
  head({{":method", "GET"}, {":path", "/"}, {"host", "h.example"}});
  EXPECT_FALSE(take_h2_header(st_, "host", "other", limits_));
  EXPECT_FALSE(finish_h2_request(st_, limits_, false));
  EXPECT_EQ(st_.req[http::field::host], "h.example");
}

TEST_F(H2RequestTest, AuthorityAndHostMustAgree) {
  head({{":method", "GET"}, {":path", "/"}, {":authority", "a.example"}, {"host", "b.example"}});
  auto r = finish_h2_request(st_, limits_, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error, GatewayError::kAuthorityMismatch);
}

TEST_F(H2RequestTest, MissingPiecesAreRefused) {
  head({{":path", "/"}, {":authority", "a"}});
  auto r = finish_h2_request(st_, limits_, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error, GatewayError::kMalformedRequest);

  H2Stream nohost(io_.get_executor(), group_, 3);
  ASSERT_TRUE(take_h2_header(nohost, ":method", "GET", limits_));
  ASSERT_TRUE(take_h2_header(nohost, ":path", "/", limits_));
  r = finish_h2_request(nohost, limits_, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error, GatewayError::kMissingHost);
}

TEST_F(H2RequestTest, HeaderLimitsMarkTooLarge) {
  limits_.max_headers = 3;
  head({{":method", "GET"}, {":path", "/"}, {":authority", "a"}, {"x", "1"}, {"y", "2"}});
  EXPECT_TRUE(st_.too_large);
  auto r = finish_h2_request(st_, limits_, false);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error, GatewayError::kHeadersTooLarge);
}

TEST_F(H2RequestTest, BodyLengthAndChunking) {
  limits_.max_body = 100;
  head({{":method", "POST"}, {":path", "/"}, {":authority", "a"}, {"content-length", "101"}});
  auto r = finish_h2_request(st_, limits_, true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error, GatewayError::kBodyTooLarge);

  H2Stream unknown(io_.get_executor(), group_, 5);
  for (auto [n, v] : {std::pair<std::string_view, std::string_view>{":method", "POST"},
                      {":path", "/"}, {":authority", "a"}})
    ASSERT_TRUE(take_h2_header(unknown, n, v, limits_));
  EXPECT_FALSE(finish_h2_request(unknown, limits_, /*has_body=*/true));
  EXPECT_TRUE(unknown.req.chunked()) << "a body of unknown length goes chunked";
}

TEST(HeadList, LowercasesNamesAndReusesBuffers) {
  HeadList h;
  h.start(204);
  h.add("Set-Cookie", "a=1");
  h.add("X-Y", "z");
  ASSERT_EQ(h.size(), 3u);
  const nghttp2_nv* nv = h.nva();
  auto str = [](const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); };
  EXPECT_EQ(str(nv[0].name, nv[0].namelen), ":status");
  EXPECT_EQ(str(nv[0].value, nv[0].valuelen), "204");
  EXPECT_EQ(str(nv[1].name, nv[1].namelen), "set-cookie");
  EXPECT_EQ(str(nv[2].value, nv[2].valuelen), "z");
  h.start(200);
  EXPECT_EQ(h.size(), 1u);
}

TEST(HeadList, AnswerHeadNamesItsBody) {
  HeadList h;
  h.start_answer(503, 20, "Retry-After: 5\r\nno colon\r\n");
  auto str = [](const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); };
  std::vector<std::pair<std::string, std::string>> got;
  for (size_t i = 0; i < h.size(); ++i)
    got.emplace_back(str(h.nva()[i].name, h.nva()[i].namelen), str(h.nva()[i].value, h.nva()[i].valuelen));
  const std::vector<std::pair<std::string, std::string>> want{
      {":status", "503"},       {"content-type", "text/plain"}, {"cache-control", "no-store"},
      {"content-length", "20"}, {"retry-after", "5"}};
  EXPECT_EQ(got, want);
}

TEST_F(H2RequestTest, BodyIsTakenInPiecesAndTheBufferReset) {
  st_.in = "0123456789";
  char buf[16];
  ASSERT_EQ(take_h2_body_in(st_, buf, 4), 4u);
  EXPECT_EQ(std::string_view(buf, 4), "0123");
  EXPECT_EQ(st_.in_off, 4u);
  ASSERT_EQ(take_h2_body_in(st_, buf, 16), 6u);
  EXPECT_EQ(std::string_view(buf, 6), "456789");
  EXPECT_TRUE(st_.in.empty());  // all taken: room from the start again
  EXPECT_EQ(st_.in_off, 0u);
  EXPECT_EQ(take_h2_body_in(st_, buf, 16), 0u);
}

// The text grows past its first block while fields are added (names and
// values of every length to 300 bytes); every field reads back whole, and
// a later head reuses the grown text.
TEST(HeadList, FieldsSurviveTheTextGrowing) {
  HeadList h;
  auto str = [](const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); };
  for (int round = 0; round < 2; ++round) {
    h.start(200);
    std::vector<std::pair<std::string, std::string>> want;
    for (size_t n = 1; n <= 300; n += 7) {
      std::string name = "X-" + std::string(n, static_cast<char>('A' + n % 26));
      std::string value(n, static_cast<char>('a' + (n + round) % 26));
      h.add(name, value);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      want.emplace_back(name, value);
    }
    ASSERT_EQ(h.size(), want.size() + 1);
    const nghttp2_nv* nv = h.nva();
    EXPECT_EQ(str(nv[0].value, nv[0].valuelen), "200");
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(str(nv[i + 1].name, nv[i + 1].namelen), want[i].first) << i;
      EXPECT_EQ(str(nv[i + 1].value, nv[i + 1].valuelen), want[i].second) << i;
    }
  }
}

// Known fields take their name from the static lowercase table; nothing is
// left for nghttp2 to copy.
TEST(HeadList, KnownNamesComeFromTheTableAndNothingIsCopied) {
  HeadList h;
  h.start(200);
  h.add("Content-Type", "text/plain", boost::beast::http::field::content_type);
  h.add("X-Odd", "v", boost::beast::http::field::unknown);
  h.add("CONTENT-LENGTH", "5", boost::beast::http::field::content_length);
  const nghttp2_nv* nv = h.nva();
  auto str = [](const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); };
  EXPECT_EQ(str(nv[1].name, nv[1].namelen), "content-type");
  EXPECT_EQ(reinterpret_cast<const char*>(nv[1].name),
            lowercase_name(boost::beast::http::field::content_type).data());
  EXPECT_EQ(str(nv[1].value, nv[1].valuelen), "text/plain");
  EXPECT_EQ(str(nv[2].name, nv[2].namelen), "x-odd");
  EXPECT_EQ(str(nv[3].name, nv[3].namelen), "content-length");
  for (size_t i = 0; i < h.size(); ++i)
    EXPECT_EQ(nv[i].flags, NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE);
  EXPECT_EQ(lowercase_name(boost::beast::http::field::unknown), "");
  EXPECT_EQ(lowercase_name(boost::beast::http::field::www_authenticate), "www-authenticate");
}

TEST(HeadList, AddsTheLinesOfAGatewayAnswer) {
  HeadList h;
  h.start(308);
  h.add_lines("Location: https://a.example/x\r\nno colon here\r\nRetry-After:  5\r\nX-Last: end");
  ASSERT_EQ(h.size(), 4u);
  const nghttp2_nv* nv = h.nva();
  auto str = [](const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); };
  EXPECT_EQ(str(nv[1].name, nv[1].namelen), "location");
  EXPECT_EQ(str(nv[1].value, nv[1].valuelen), "https://a.example/x");
  EXPECT_EQ(str(nv[2].name, nv[2].namelen), "retry-after");
  EXPECT_EQ(str(nv[2].value, nv[2].valuelen), "5");
  EXPECT_EQ(str(nv[3].value, nv[3].valuelen), "end");
}

// The server's first SETTINGS tells the client the configured limit, while
// nghttp2 itself was given twice it; other frames are left alone.
TEST(H2Settings, ClientIsToldTheConfiguredStreamLimit) {
  config::LimitsConfig limits;
  limits.h2_max_concurrent_streams = 100;
  EXPECT_EQ(h2_internal_stream_limit(limits), 200u);
  limits.h2_max_concurrent_streams = 0x7fffffff;
  EXPECT_EQ(h2_internal_stream_limit(limits), 0x7fffffffu);
  // SETTINGS (type 4), two entries: INITIAL_WINDOW_SIZE, MAX_CONCURRENT_STREAMS = 200.
  uint8_t frame[] = {0, 0, 12, 4, 0, 0, 0, 0, 0,  0, 4, 0, 1, 0, 0,  0, 3, 0, 0, 0, 200};
  patch_max_concurrent_streams(frame, sizeof frame, 100);
  EXPECT_EQ(frame[20], 100);
  EXPECT_EQ(frame[13], 0);  // the window entry untouched
  EXPECT_EQ(frame[12], 1);
  uint8_t ping[] = {0, 0, 6, 6, 0, 0, 0, 0, 0,  0, 3, 0, 0, 0, 200};  // not SETTINGS
  patch_max_concurrent_streams(ping, sizeof ping, 100);
  EXPECT_EQ(ping[14], 200);
}

}  // namespace
}  // namespace sag::session
