// nghttp2's allocations (a stream's state, header table entries, outbound
// frames) taken from the thread's block cache instead of malloc, so an
// HTTP/2 stream costs nghttp2 no trip to malloc once the worker has warmed
// up (issue 12's allocation count). Each block carries its size in front
// (nghttp2's free callback does not give it). Blocks larger than the cache's
// classes come from malloc, marked so.
//
// Thread: any; a block freed on another thread joins that thread's cache
// (base::BlockCache). Under AddressSanitizer the cache forwards to the heap.
#pragma once

#include <nghttp2/nghttp2.h>

namespace sag::session {

// For nghttp2_session_server_new3; static storage, valid for the process.
nghttp2_mem* nghttp2_pooled_memory();

}  // namespace sag::session
