// A stream's response body as nghttp2 takes it: the logic of the DATA
// source callback (nghttp2_data_source_read_callback), over the bytes the
// stream offers in H2Stream::out, free of the session so unit-testable.
//
// Thread: the connection's worker.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>

#include "session/http2/h2_stream.h"

namespace sag::session {

// Copies up to `length` of the offered bytes into `buf` and returns how
// many. Once the offer is used up the stream is woken (its buffer is free
// again) and, when those were its last bytes, NGHTTP2_DATA_FLAG_EOF is set
// in `flags`. With nothing offered and more to come: the stream is marked
// deferred and NGHTTP2_ERR_DEFERRED returned (the session resumes it when
// the next bytes are offered).
ssize_t take_h2_body_out(H2Stream& st, uint8_t* buf, size_t length, uint32_t* flags);

}  // namespace sag::session
