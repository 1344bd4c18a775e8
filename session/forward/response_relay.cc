#include "session/forward/response_relay.h"

#include "session/header_rules.h"

namespace sag::session {
namespace http = boost::beast::http;

ResponseFraming prepare_response_head(ServerConnection::Response& res, http::verb method,
                                      bool declared_length) {
  const unsigned status = res.result_int();
  ResponseFraming framing;
  framing.no_body = method == http::verb::head || status == 204 || status == 304 || status < 200;
  framing.upstream_chunked = res.chunked();
  framing.has_length = declared_length;
  strip_hop_by_hop(res);
  if (status == 204 || status < 200) res.erase(http::field::content_length);
  return framing;
}

boost::asio::awaitable<RelayResult> relay_response(ServerConnection& up, ClientPort& port,
                                                   const ResponseFraming& framing, char* buf,
                                                   size_t cap) {
  auto& res = up.response();
  RelayResult r;
  bool client_ok = true;
  if (up.response_done() || !up.has_unread()) {  // (a prefetched body is done)
    const size_t n = up.prefetched();
    client_ok = co_await port.send_head(res, framing, n ? buf : nullptr, n, up.response_done());
    r.head_sent = true;
  }
  while (client_ok && !up.response_done()) {
    size_t got = 0;
    const auto status = co_await up.read_body(buf, cap, got);
    if (port.client_gone()) {
      client_ok = false;
      break;
    }
    // Mid-response the only honest signal left is cutting the client off.
    if (status != ServerConnection::Status::kOk) {
      r.end = RelayEnd::kServerBroke;
      co_return r;
    }
    // A read may parse only chunk framing: nothing to pass on yet.
    if (got == 0 && !up.response_done()) continue;
    if (!r.head_sent) {
      client_ok = co_await port.send_head(res, framing, buf, got, up.response_done());
      r.head_sent = true;
    } else {
      client_ok = co_await port.send_body(buf, got, up.response_done());
    }
  }
  r.end = client_ok ? RelayEnd::kComplete : RelayEnd::kClientGone;
  co_return r;
}

}  // namespace sag::session
