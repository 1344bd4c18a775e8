#include "session/http2/h2_settings.h"

#include <algorithm>
#include <iterator>

#include "session/http2/nghttp2_memory.h"

namespace sag::session {

uint32_t h2_internal_stream_limit(const config::LimitsConfig& limits) {
  return static_cast<uint32_t>(
      std::min<uint64_t>(uint64_t{limits.h2_max_concurrent_streams} * 2, INT32_MAX));
}

nghttp2_session* new_h2_server_session(const H2Callbacks& callbacks, void* user,
                                       const config::LimitsConfig& limits) {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return nullptr;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, callbacks.on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, callbacks.on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, callbacks.on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, callbacks.on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, callbacks.on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, callbacks.on_frame_send);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cb);
    return nullptr;
  }
  // The gateway grants window only as servers take the body, so a stalled
  // server can't make it buffer more.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_continuations(opt, 8);
  // Rapid reset (CVE-2023-44487): a burst of 1000, then 33 a second.
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
  // No priority tree (RFC 9113 deprecates it): closed streams are freed at
  // once rather than kept for it.
  nghttp2_option_set_no_closed_streams(opt, 1);
  nghttp2_session* ng = nullptr;
  const int rv = nghttp2_session_server_new3(&ng, cb, user, opt, nghttp2_pooled_memory());
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) return nullptr;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2_internal_stream_limit(limits)},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kH2StreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<uint32_t>(std::min<uint64_t>(limits.max_header_bytes, UINT32_MAX))},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      // RFC 9218: no RFC 7540 priority tree. PRIORITY frames and HEADERS
      // priorities are read and ignored (no idle stream objects made for
      // them), and each stream with data to send costs one queue push
      // instead of a walk up the tree (S3: about 160 instructions a stream).
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(ng, NGHTTP2_FLAG_NONE, 0, kH2ConnectionWindow);
  return ng;
}

void patch_max_concurrent_streams(uint8_t* frame, size_t n, uint32_t limit) {
  if (n < 9 || frame[3] != NGHTTP2_SETTINGS) return;
  const size_t len = (size_t{frame[0]} << 16) | (size_t{frame[1]} << 8) | frame[2];
  for (size_t at = 9; at + 6 <= std::min(n, 9 + len); at += 6) {
    if (((frame[at] << 8) | frame[at + 1]) != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) continue;
    frame[at + 2] = static_cast<uint8_t>(limit >> 24);
    frame[at + 3] = static_cast<uint8_t>(limit >> 16);
    frame[at + 4] = static_cast<uint8_t>(limit >> 8);
    frame[at + 5] = static_cast<uint8_t>(limit);
  }
}

}  // namespace sag::session
