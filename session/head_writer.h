// HTTP/1.x message heads written flat, byte for byte as Beast's serializer
// writes them (start line, the fields in their order as "Name: value", an
// empty line), into a caller's buffer. A head and a body that is already
// whole then go out in one gather write without the serializer's buffer
// sequences, which cost about 10,000 instructions per request (profile of
// issue 12); the serializer stays for chunked and streamed bodies.
//
// Contract: returns the head's size, or 0 when it does not fit in `cap` or
// the version is not HTTP/1.0 or 1.1 (the caller then uses Beast's
// serializer). Pure: no allocation, any thread.
#pragma once

#include <cstddef>

#include "session/http_message.h"

namespace sag::session {

size_t write_head(const RequestHeader& h, char* out, size_t cap);
size_t write_head(const ResponseHeader& h, char* out, size_t cap);

}  // namespace sag::session
