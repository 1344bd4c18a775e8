#include "session/http2/h2_output.h"

#include "session/http2/h2_settings.h"

namespace sag::session {

bool H2Output::pack(nghttp2_session* ng) {
  while (out_.size() < kBatch && nghttp2_session_want_write(ng)) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(ng, &data);
    if (n < 0) return false;
    if (n == 0) break;
    out_.insert(out_.end(), data, data + n);
    if (!settings_patched_) {
      settings_patched_ = true;
      patch_max_concurrent_streams(out_.data() + out_.size() - n, static_cast<size_t>(n), limit_);
    }
  }
  return true;
}

}  // namespace sag::session
