// The frames an HTTP/2 connection has made and not yet written: nghttp2's
// output gathered into one buffer, so that a burst of responses goes out in
// one TLS write, and the limit the client is told patched into the first
// SETTINGS on the way (patch_max_concurrent_streams).
//
// Thread: the connection's worker. The session decides when frames are
// made (pack) and must not pack while the bytes are being written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <nghttp2/nghttp2.h>

namespace sag::session {

class H2Output {
 public:
  // What one pack() gathers at most (it may pass it by one frame).
  static constexpr size_t kBatch = 64 * 1024;

  // `announced_limit`: the MAX_CONCURRENT_STREAMS the client is told.
  explicit H2Output(uint32_t announced_limit) : limit_(announced_limit) { out_.reserve(kBatch); }

  // Appends what `ng` has to send, until kBatch or nothing is left. False
  // on nghttp2's error (the session is broken); nghttp2's callbacks run
  // inside.
  bool pack(nghttp2_session* ng);

  const uint8_t* data() const { return out_.data(); }
  size_t size() const { return out_.size(); }
  bool empty() const { return out_.empty(); }
  // Once written.
  void clear() { out_.clear(); }

 private:
  std::vector<uint8_t> out_;
  uint32_t limit_;
  bool settings_patched_ = false;  // the first SETTINGS was seen
};

}  // namespace sag::session
