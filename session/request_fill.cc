#include "session/request_fill.h"

#include <cstdint>
#include <limits>

namespace sag::session {

void RequestFill::start(std::string_view method, std::string_view target, bool http10) {
  req_.method_string(method);
  req_.target(target);
  req_.version(http10 ? 10 : 11);
}

void RequestFill::field(boost::beast::http::field f, std::string_view name,
                        std::string_view value, bool stored_form) {
  if (stored_form) {
    req_.append_stored(f, name, value);
  } else {
    req_.insert(f, name, value);
  }
}

void RequestFill::end(std::string_view field_lines) { req_.adopt_input(field_lines); }

void fill_request(std::string_view head, RequestHeader& req) {
  // The head passed the session's limits; none applies again here.
  HeadLimits unlimited;
  unlimited.max_header_bytes = std::numeric_limits<size_t>::max();
  unlimited.max_request_line = std::numeric_limits<size_t>::max();
  unlimited.max_headers = std::numeric_limits<uint32_t>::max();
  RequestFill fill(req);
  if (scan_request_head(head, unlimited, &fill).state != HeadScan::State::kComplete)
    req = RequestHeader{};  // (fields filed in place would refer to `head`)
}

}  // namespace sag::session
