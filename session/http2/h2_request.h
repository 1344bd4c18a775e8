// An HTTP/2 request turned into the request the Forwarder carries: header
// fields taken one by one as nghttp2 decodes them (pseudo-headers, Host,
// Cookie crumbs, the RFC 9113 §6.5.2 size accounting), then the checks a
// complete head must pass. Free of the session's I/O, so unit-testable.
//
// Thread: the connection's worker.
#pragma once

#include <optional>
#include <string_view>

#include "session/gateway_error.h"
#include "session/http2/h2_stream.h"

namespace sag::config {
struct LimitsConfig;
}

namespace sag::session {

// Adds one decoded header field to `st` (nghttp2 has validated names,
// values and pseudo-header rules). Past limits.max_header_bytes or
// max_headers the rest is ignored and the stream is marked too_large.
// False: the request is malformed (a second Host) and the stream must be
// reset. Allocation may throw: callers catch.
bool take_h2_header(H2Stream& st, std::string_view name, std::string_view value,
                    const config::LimitsConfig& limits);

// Why a complete request head is refused, with the answer's detail text.
struct H2Refusal {
  GatewayError error;
  std::string_view detail;
};

// Checks the complete head and finishes the request for the Forwarder:
// Host from :authority (or Host), Cookie crumbs joined, a declared body
// over limits.max_body refused, a body of unknown length sent chunked
// (`has_body`: the client's request has one).
std::optional<H2Refusal> finish_h2_request(H2Stream& st, const config::LimitsConfig& limits,
                                           bool has_body);

// Moves up to `cap` bytes of the request body received (st.in) to `buf`;
// returns how many. The caller gives them back to the stream's window.
size_t take_h2_body_in(H2Stream& st, char* buf, size_t cap);

}  // namespace sag::session
