// Where Asio's coroutine frames come from: the thread's BlockCache
// (config/base/block_cache.h), by size class, instead of Asio's per-thread
// recycling slots.
//
// Why: Asio keeps BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE recycled blocks
// per purpose and scans them linearly. An HTTP/2 connection has tens of
// streams in flight, each a stack of coroutine frames, so frames overflowed
// the slots and every request went to memalign and free about ten times
// (profile of S3: 2,000 instructions per request). More slots made the scans
// cost more than they saved.
//
// How: explicit specializations of thread_info_base::allocate/deallocate
// for awaitable_frame_tag, which awaitable_frame_base's operator new and
// delete call. A specialization must be declared before any use in every
// translation unit, so the build force-includes this header into every C++
// file (CMakeLists.txt: -include). They are inline, so a frame's operator
// new is the cache's list pop.
//
// Thread: any; a frame freed on another thread joins that thread's cache.
#pragma once

#include <cstddef>

#include <boost/asio/detail/thread_info_base.hpp>

#include "block_cache.h"  // (beside this file: it is force-included by path)

namespace boost::asio::detail {

// Blocks are operator new's, aligned for any fundamental type, which is
// what awaitable_frame_base asks for (the default alignment); a frame larger
// than the cache's largest class goes to operator new itself.
static_assert(BOOST_ASIO_DEFAULT_ALIGN <= alignof(std::max_align_t));

template <>
inline void* thread_info_base::allocate<thread_info_base::awaitable_frame_tag>(
    thread_info_base::awaitable_frame_tag, thread_info_base*, std::size_t size, std::size_t) {
  if (size > sag::base::BlockCache::kMaxBlock) return ::operator new(size);
  return sag::base::BlockCache::take(size);
}

template <>
inline void thread_info_base::deallocate<thread_info_base::awaitable_frame_tag>(
    thread_info_base::awaitable_frame_tag, thread_info_base*, void* pointer, std::size_t size) {
  if (size > sag::base::BlockCache::kMaxBlock) {
    ::operator delete(pointer);
    return;
  }
  sag::base::BlockCache::give(pointer, size);
}

}  // namespace boost::asio::detail
