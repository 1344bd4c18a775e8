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
// file (CMakeLists.txt: -include); the definitions are in
// asio_frame_memory.cc, in sag_asio, which every user of Asio links. A file
// compiled without the header would not link consistently; none is.
//
// Thread: any; a frame freed on another thread joins that thread's cache.
#pragma once

#include <cstddef>

#include <boost/asio/detail/thread_info_base.hpp>

namespace boost::asio::detail {

template <>
void* thread_info_base::allocate<thread_info_base::awaitable_frame_tag>(
    thread_info_base::awaitable_frame_tag, thread_info_base* this_thread, std::size_t size,
    std::size_t align);

template <>
void thread_info_base::deallocate<thread_info_base::awaitable_frame_tag>(
    thread_info_base::awaitable_frame_tag, thread_info_base* this_thread, void* pointer,
    std::size_t size);

}  // namespace boost::asio::detail
