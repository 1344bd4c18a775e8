#include "session/http2/h2_body_out.h"

#include <algorithm>
#include <cstring>

namespace sag::session {

ssize_t take_h2_body_out(H2Stream& st, uint8_t* buf, size_t length, uint32_t* flags) {
  const size_t n = std::min(length, st.out_len);
  if (n) std::memcpy(buf, st.out, n);
  st.out += n;
  st.out_len -= n;
  if (st.out_len == 0) {
    if (st.out_last) *flags |= NGHTTP2_DATA_FLAG_EOF;
    st.sig.notify();
    if (n == 0 && !st.out_last) {
      st.deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

}  // namespace sag::session
