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
// The operations a coroutine waits on (a socket wait, a read, a timer) take
// their state from the same cache: associated_allocator is specialized for
// the handler use_awaitable makes, so Asio allocates each operation through
// PoolAllocator. Asio's own slots for them (BOOST_ASIO_RECYCLING_ALLOCATOR_
// CACHE_SIZE per thread) were overflowed by hundreds of HTTP/2 streams each
// waiting on its server, and every such wait went to memalign and free
// (S3 profile: 0.7 of each per request). Binding the allocator to the token
// instead (bind_allocator) adds a handler layer that cost HTTP/1.1 about 80
// instructions per request.
//
// Thread: any; a frame freed on another thread joins that thread's cache.
#pragma once

#include <cstddef>

#include <boost/asio/associated_allocator.hpp>
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

namespace boost::asio {

namespace detail {
template <typename Executor, typename... Ts>
class awaitable_handler;  // (impl/use_awaitable.hpp)
}  // namespace detail

template <typename Executor, typename... Ts, typename Allocator>
struct associated_allocator<detail::awaitable_handler<Executor, Ts...>, Allocator> {
  using type = sag::base::PoolAllocator<void>;
  static type get(const detail::awaitable_handler<Executor, Ts...>&) noexcept { return {}; }
  static type get(const detail::awaitable_handler<Executor, Ts...>&, const Allocator&) noexcept {
    return {};
  }
};

}  // namespace boost::asio
