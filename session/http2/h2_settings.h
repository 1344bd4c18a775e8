// How the gateway sets up the server side of an HTTP/2 connection in
// nghttp2: its options (flood limits, window updates left to the gateway,
// no closed streams kept), the pooled allocator, the first SETTINGS (RFC
// 7540 priorities off, RFC 9218), and the concurrent-stream limit as the
// client sees it.
//
// Thread: any (pure set-up); the session then belongs to its connection.
#pragma once

#include <cstddef>
#include <cstdint>

#include <nghttp2/nghttp2.h>

#include "config/gateway_config.h"

namespace sag::session {

// Stream windows open as servers take the body; the connection's at once.
constexpr int32_t kH2StreamWindow = 64 * 1024;
constexpr int32_t kH2ConnectionWindow = 1024 * 1024;

struct H2Callbacks {
  nghttp2_on_begin_headers_callback on_begin_headers;
  nghttp2_on_header_callback on_header;
  nghttp2_on_frame_recv_callback on_frame_recv;
  nghttp2_on_data_chunk_recv_callback on_data_chunk_recv;
  nghttp2_on_stream_close_callback on_stream_close;
  nghttp2_on_frame_send_callback on_frame_send;
};

// A server session calling `callbacks` with `user`, its SETTINGS queued;
// nullptr when nghttp2 can't make one. The caller deletes it.
nghttp2_session* new_h2_server_session(const H2Callbacks& callbacks, void* user,
                                       const config::LimitsConfig& limits);

// nghttp2 takes a stream past the value it sent as a connection error
// (GOAWAY: every stream in flight lost), where RFC 9113 §5.1.2 allows
// refusing that stream alone. So nghttp2 is given twice the limit, the
// client is told the limit itself (patch_max_concurrent_streams), and the
// session refuses a stream past it with REFUSED_STREAM.
uint32_t h2_internal_stream_limit(const config::LimitsConfig& limits);

// In the server's first frame (its SETTINGS), MAX_CONCURRENT_STREAMS
// becomes `limit`; any other frame is left alone.
void patch_max_concurrent_streams(uint8_t* frame, size_t n, uint32_t limit);

}  // namespace sag::session
