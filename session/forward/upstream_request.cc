#include "session/forward/upstream_request.h"

#include "session/header_rules.h"

namespace sag::session {
namespace http = boost::beast::http;

void prepare_upstream_request(Request& req, bool websocket,
                              const config::ForwardedConfig& forwarded,
                              const ClientAddress& client, std::string_view host) {
  const bool chunked = req.chunked();
  strip_hop_by_hop(req);
  if (chunked) req.chunked(true);
  req.erase(http::field::expect);
  if (websocket) {
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "websocket");
  }
  apply_forwarded(req, forwarded, client, host);
  req.version(11);
}

}  // namespace sag::session
