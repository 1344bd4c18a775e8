#include "session/http1/client_framing.h"

namespace sag::session {
namespace http = boost::beast::http;

bool frame_for_client(Response& res, const ResponseFraming& framing, bool http10, bool& keep_alive) {
  bool chunked = false;
  if (!framing.no_body) {
    if (http10) {
      if (!framing.has_length) keep_alive = false;
    } else if (framing.upstream_chunked || !framing.has_length) {
      res.chunked(true);
      chunked = true;
    }
  }
  res.version(11);
  res.keep_alive(keep_alive);
  if (keep_alive && http10) res.set(http::field::connection, "keep-alive");
  return chunked;
}

}  // namespace sag::session
