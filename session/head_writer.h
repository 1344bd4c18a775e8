// HTTP/1.x message heads written flat, byte for byte as Beast's serializer
// writes them with its own basic_fields (start line, the fields in their
// order as "Name: value", an empty line), into a caller's buffer. A head and
// a body that is already whole then go out in one gather write; streamed
// bodies go through Beast's serializer, whose head comes from
// HeaderFields::writer, which writes with these functions too.
//
// Contract: returns the head's size, or 0 when it does not fit in `cap`.
// Pure: no allocation, any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "session/http_message.h"

namespace sag::session {

size_t write_head(const RequestHeader& h, char* out, size_t cap);
size_t write_head(const ResponseHeader& h, char* out, size_t cap);

// The same from the start line's parts (`reason` as written: empty stays
// empty).
size_t write_request_head(std::string_view method, std::string_view target, unsigned version,
                          const Fields& fields, char* out, size_t cap);
size_t write_response_head(unsigned status, std::string_view reason, unsigned version,
                           const Fields& fields, char* out, size_t cap);
// A size that any head with these fields and start-line texts (method and
// target, or reason) fits in.
size_t head_size_bound(std::string_view first, std::string_view second, const Fields& fields);

}  // namespace sag::session
