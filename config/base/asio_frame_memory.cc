#include "config/base/asio_frame_memory.h"

#include <new>

#include "config/base/block_cache.h"

namespace boost::asio::detail {

// Blocks are operator new's, aligned for any fundamental type, which is
// what awaitable_frame_base asks for (the default alignment); a frame larger
// than the cache's largest class goes to operator new itself.
static_assert(BOOST_ASIO_DEFAULT_ALIGN <= alignof(std::max_align_t));

template <>
void* thread_info_base::allocate<thread_info_base::awaitable_frame_tag>(
    thread_info_base::awaitable_frame_tag, thread_info_base*, std::size_t size, std::size_t) {
  if (size > sag::base::BlockCache::kMaxBlock) return ::operator new(size);
  return sag::base::BlockCache::take(size);
}

template <>
void thread_info_base::deallocate<thread_info_base::awaitable_frame_tag>(
    thread_info_base::awaitable_frame_tag, thread_info_base*, void* pointer, std::size_t size) {
  if (size > sag::base::BlockCache::kMaxBlock) {
    ::operator delete(pointer);
    return;
  }
  sag::base::BlockCache::give(pointer, size);
}

}  // namespace boost::asio::detail
