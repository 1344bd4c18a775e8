// Builds the request the Forwarder works on from a head, in the same pass
// that scan_request_head() checks it (a HeadSink): no second parser and no
// second walk over the bytes. A field written "Name: value" is filed where
// it lies in the read buffer, and the field lines are copied once when the
// head turns out complete; any other spelling is stored on its own.
//
// Why not Beast's parser: it re-checked what the scan had checked and cost
// a quarter of the gateway's own work per keep-alive request (profile in
// docs/dependencies.md#own-http1-parsing).
#pragma once

#include <string_view>

#include "session/http_message.h"
#include "session/request_head.h"

namespace sag::session {

// Fills `req` (expected empty, and thrown away unless the scan it was given
// to ends kComplete). Thread: the caller's; `req` outlives the scan.
class RequestFill final : public HeadSink {
 public:
  explicit RequestFill(RequestHeader& req) : req_(req) {}
  void start(std::string_view method, std::string_view target, bool http10) override;
  void field(boost::beast::http::field f, std::string_view name, std::string_view value,
             bool stored_form) override;
  void end(std::string_view field_lines) override;

 private:
  RequestHeader& req_;
};

// Sets `req`'s method, target, version and fields from `head` (request
// line through the empty line, as scanned: HeadScan::kComplete,
// head_length bytes), for a head already scanned without a sink. `req` is
// expected empty. Contract: `head` passed the scan; on any other input
// `req` is left empty.
void fill_request(std::string_view head, RequestHeader& req);

}  // namespace sag::session
