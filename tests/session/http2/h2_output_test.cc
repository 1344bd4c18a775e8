// H2Output (session/http2/h2_output.h) over a real nghttp2 server session:
// what it gathers, where it stops, the first SETTINGS patched, errors.
#include "session/http2/h2_output.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "config/gateway_config.h"
#include "session/http2/h2_settings.h"

namespace sag::session {
namespace {

struct Frame {
  uint32_t length;
  uint8_t type;
  size_t at;  // of the payload
};

// The frames in bytes [0, n), which must end on a frame's end.
std::vector<Frame> frames_of(const uint8_t* p, size_t n) {
  std::vector<Frame> out;
  size_t i = 0;
  while (i + 9 <= n) {
    const uint32_t len = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out.push_back({len, p[i + 3], i + 9});
    i += 9 + len;
  }
  EXPECT_EQ(i, n) << "bytes past the last whole frame";
  return out;
}

std::map<uint16_t, uint32_t> settings_of(const uint8_t* payload, uint32_t len) {
  std::map<uint16_t, uint32_t> out;
  for (uint32_t i = 0; i + 6 <= len; i += 6) {
    const uint16_t id = static_cast<uint16_t>((payload[i] << 8) | payload[i + 1]);
    out[id] = (uint32_t{payload[i + 2]} << 24) | (uint32_t{payload[i + 3]} << 16) |
              (uint32_t{payload[i + 4]} << 8) | payload[i + 5];
  }
  return out;
}

class H2OutputTest : public ::testing::Test {
 protected:
  void make(const H2Callbacks& cb = {}) {
    limits_.h2_max_concurrent_streams = 7;
    ng_ = new_h2_server_session(cb, this, limits_);
    ASSERT_NE(ng_, nullptr);
  }
  ~H2OutputTest() override {
    if (ng_) nghttp2_session_del(ng_);
  }
  // Packs the session's first frames into `out`: their count into
  // first_frames_, and the entries of the first, which must be SETTINGS,
  // into first_settings_.
  void pack_first(H2Output& out) {
    ASSERT_TRUE(out.pack(ng_));
    auto first = frames_of(out.data(), out.size());
    ASSERT_FALSE(first.empty());
    ASSERT_EQ(first[0].type, NGHTTP2_SETTINGS);
    first_frames_ = first.size();
    first_settings_ = settings_of(out.data() + first[0].at, first[0].length);
  }

  config::LimitsConfig limits_;
  nghttp2_session* ng_ = nullptr;
  size_t first_frames_ = 0;
  std::map<uint16_t, uint32_t> first_settings_;
};

TEST_F(H2OutputTest, GathersFramesAndPatchesOnlyTheFirstSettings) {
  make();
  H2Output out(limits_.h2_max_concurrent_streams);
  ASSERT_NO_FATAL_FAILURE(pack_first(out));
  // nghttp2 was given twice the limit; the client is told the limit.
  EXPECT_EQ(first_settings_.at(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 7u);
  EXPECT_FALSE(nghttp2_session_want_write(ng_));
  const size_t before = out.size();
  ASSERT_TRUE(out.pack(ng_));  // nothing more to send
  EXPECT_EQ(out.size(), before);

  // A later SETTINGS with the same entry keeps its value, and is appended
  // to what was not yet written.
  const nghttp2_settings_entry entry{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 9};
  ASSERT_EQ(nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, &entry, 1), 0);
  ASSERT_TRUE(out.pack(ng_));
  auto all = frames_of(out.data(), out.size());
  ASSERT_EQ(all.size(), first_frames_ + 1);
  EXPECT_EQ(all.back().type, NGHTTP2_SETTINGS);
  EXPECT_EQ(settings_of(out.data() + all.back().at, all.back().length)
                .at(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
            9u);
  out.clear();
  EXPECT_TRUE(out.empty());
}

// RFC 7540's priority tree is off (RFC 9218): the first SETTINGS says so,
// and a PRIORITY frame for a stream not yet opened makes no stream object.
TEST_F(H2OutputTest, AnnouncesNoRfc7540PrioritiesAndKeepsNoIdleStreams) {
  make();
  H2Output out(limits_.h2_max_concurrent_streams);
  ASSERT_NO_FATAL_FAILURE(pack_first(out));
  EXPECT_EQ(first_settings_[NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES], 1u);
  out.clear();

  std::string in(NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
  in += std::string("\0\0\0\x04\0\0\0\0\0", 9);  // empty SETTINGS
  // PRIORITY for idle stream 5: depends on stream 0, weight 16.
  in += std::string("\0\0\x05\x02\0\0\0\0\x05\0\0\0\0\x0f", 14);
  const auto* bytes = reinterpret_cast<const uint8_t*>(in.data());
  ASSERT_EQ(nghttp2_session_mem_recv(ng_, bytes, in.size()), static_cast<ssize_t>(in.size()));
  EXPECT_EQ(nghttp2_session_find_stream(ng_, 5), nullptr);
  EXPECT_TRUE(nghttp2_session_want_read(ng_));
}

TEST_F(H2OutputTest, StopsAtTheBatchAndGoesOnAfterTheWrite) {
  make();
  H2Output out(limits_.h2_max_concurrent_streams);
  ASSERT_TRUE(out.pack(ng_));
  out.clear();
  // PING frames (17 bytes each) enough for more than two batches.
  const size_t pings = 2 * H2Output::kBatch / 17 + 10;
  for (size_t i = 0; i < pings; ++i) ASSERT_EQ(nghttp2_submit_ping(ng_, NGHTTP2_FLAG_NONE, nullptr), 0);
  size_t total = 0, packs = 0;
  while (nghttp2_session_want_write(ng_)) {
    ASSERT_TRUE(out.pack(ng_));
    EXPECT_GT(out.size(), 0u);
    EXPECT_LT(out.size(), H2Output::kBatch + 17);  // passes the batch by one frame at most
    for (const Frame& f : frames_of(out.data(), out.size())) EXPECT_EQ(f.type, NGHTTP2_PING);
    total += out.size();
    out.clear();
    ASSERT_LT(++packs, 10u);
  }
  EXPECT_EQ(total, pings * 17);
  EXPECT_EQ(packs, 3u);
}

TEST_F(H2OutputTest, NghttpErrorIsReported) {
  H2Callbacks cb{};
  cb.on_frame_send = [](nghttp2_session*, const nghttp2_frame*, void*) {
    return static_cast<int>(NGHTTP2_ERR_CALLBACK_FAILURE);
  };
  make(cb);
  H2Output out(limits_.h2_max_concurrent_streams);
  EXPECT_FALSE(out.pack(ng_));
}

}  // namespace
}  // namespace sag::session
