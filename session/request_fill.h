// Turns a request head that scan_request_head() accepted into the request
// the Forwarder works on, without a second parser: the scan already
// checked every byte, so this only splits lines at the places the scan
// proved are there.
//
// Why not Beast's parser: it re-checked what the scan had checked and cost
// a quarter of the gateway's own work per keep-alive request (profile in
// docs/dependencies.md#own-http1-parsing).
#pragma once

#include <string_view>

#include "session/http_message.h"

namespace sag::session {

// Sets `req`'s method, target, version and fields from `head` (request
// line through the empty line, as scanned: HeadScan::kComplete,
// head_length bytes). `req` is expected empty. Contract: `head` passed the
// scan; on any other input the result is unspecified but memory-safe.
void fill_request(std::string_view head, bool http10, RequestHeader& req);

}  // namespace sag::session
