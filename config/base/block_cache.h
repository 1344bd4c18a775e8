// Per-thread caches of small memory blocks, for objects that are made and
// dropped once per request (HTTP header fields): after warm-up a request
// takes its blocks from the thread's cache and gives them back, so the
// steady state never reaches malloc, and no lock is taken because nothing
// is shared between threads.
//
// PoolAllocator<T> is the standard-allocator face of it (stateless, every
// instance equal), for containers that take an allocator, e.g. Beast's
// basic_fields. A block freed on another thread than the one that took it
// simply joins that thread's cache.
#pragma once

#include <bit>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace sag::base {

class BlockCache;

namespace block_cache_detail {

inline constexpr size_t kMinBlock = 64;
// Classes: every multiple of 64 bytes up to 1 KiB (coroutine frames and
// operation states, which an idle connection holds: a power-of-two class
// would waste a quarter of them on average), then 2 and 4 KiB.
inline constexpr size_t kFineLimit = 1024;
inline constexpr size_t kFineClasses = kFineLimit / kMinBlock;  // 16
inline constexpr size_t kClasses = kFineClasses + 2;

// A thread's free lists. Trivially constructible and destructible and
// constant-initialized, so the inline fast paths below are a plain
// thread-local load (no guard call); block_cache.cc frees the blocks at
// thread exit.
struct ThreadBlocks {
  struct Node {
    Node* next;
  };
  Node* head[kClasses];
  size_t count[kClasses];
  size_t low[kClasses];  // least `count` since the last trim
  long outstanding;
  bool alive;  // caching on this thread (never under ASan)
  bool dead;   // the thread is exiting: no more caching
};
extern constinit thread_local ThreadBlocks t_blocks;

constexpr size_t class_of(size_t bytes) {
  return bytes <= kMinBlock    ? 0
         : bytes <= kFineLimit ? (bytes - 1) / kMinBlock
         : bytes <= 2048       ? kFineClasses
                               : kFineClasses + 1;
}
constexpr size_t class_size(size_t c) {
  return c < kFineClasses ? kMinBlock * (c + 1) : c == kFineClasses ? 2048 : 4096;
}

}  // namespace block_cache_detail

class BlockCache {
 public:
  // Blocks of 64, 128, 192, ... 1024, 2048 and 4096 bytes are cached (4096: a connection's
  // request-head read buffer, taken only while a request arrives); larger
  // ones are plain operator new/delete.
  static constexpr size_t kMinBlock = block_cache_detail::kMinBlock;
  static constexpr size_t kMaxBlock = 4096;
  static constexpr size_t kClasses = block_cache_detail::kClasses;
  // A class keeps at most this many bytes of free blocks: enough for the
  // swing of hundreds of HTTP/2 streams finishing and starting together
  // (256 KiB was not: S3 went to malloc for 1.4 blocks per request).
  // trim() hands back what a quiet period left unused, so a burst does not
  // pin its peak for the thread's life.
  static constexpr size_t kMaxCachedBytes = 1024 * 1024;

  // False under AddressSanitizer: every block then comes from and goes back
  // to the heap, so ASan still sees each use after free.
  static const bool kCaching;

  // The calling thread's cache.
  // (The common case inline: a block of that class is on the list, or the
  // list has room for one more.)
  static void* take(size_t bytes) {
    using namespace block_cache_detail;
    ThreadBlocks& t = t_blocks;
    const size_t c = class_of(bytes);
    if (__builtin_expect(t.alive, 1)) {
      if (ThreadBlocks::Node* n = t.head[c]) {
        t.head[c] = n->next;
        ++t.outstanding;
        if (--t.count[c] < t.low[c]) t.low[c] = t.count[c];
        return n;
      }
    }
    return take_slow(bytes);
  }
  static void give(void* p, size_t bytes) noexcept {
    using namespace block_cache_detail;
    ThreadBlocks& t = t_blocks;
    const size_t c = class_of(bytes);
    if (__builtin_expect(t.alive, 1) && (t.count[c] + 1) * class_size(c) <= kMaxCachedBytes) {
      auto* n = static_cast<ThreadBlocks::Node*>(p);
      n->next = t.head[c];
      t.head[c] = n;
      ++t.count[c];
      --t.outstanding;
      return;
    }
    give_slow(p, bytes);
  }

  // Blocks handed out by take() and not yet given back, on this thread
  // (for tests and leak checks).
  static long outstanding() noexcept;
  // Frees the calling thread's free blocks that no take() reached since the
  // last trim (the bottom of each class's list, below its low-water mark).
  // Call about once a second from each thread that uses the cache; returns
  // the bytes freed.
  static size_t trim() noexcept;
  // Bytes of free blocks the calling thread's cache holds (tests).
  static size_t cached_bytes() noexcept;

 private:
  static void* take_slow(size_t bytes);
  static void give_slow(void* p, size_t bytes) noexcept;
};

template <class T>
class PoolAllocator {
 public:
  using value_type = T;

  PoolAllocator() noexcept = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    if (n > BlockCache::kMaxBlock / sizeof(T) || alignof(T) > alignof(std::max_align_t))
      return std::allocator<T>{}.allocate(n);
    return static_cast<T*>(BlockCache::take(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n > BlockCache::kMaxBlock / sizeof(T) || alignof(T) > alignof(std::max_align_t)) {
      std::allocator<T>{}.deallocate(p, n);
      return;
    }
    BlockCache::give(p, n * sizeof(T));
  }

  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
};

// An object in a cached block: for per-request state that would otherwise
// sit in coroutine frames, where g++ keeps every local and every awaiter
// for the frame's whole life (the Forwarder's Pending: one block instead of
// a stack of frames while an exchange waits).
template <class T>
struct PooledDelete {
  void operator()(T* p) const noexcept {
    p->~T();
    BlockCache::give(p, sizeof(T));
  }
};
template <class T>
using Pooled = std::unique_ptr<T, PooledDelete<T>>;

template <class T, class... Args>
Pooled<T> make_pooled(Args&&... args) {
  static_assert(sizeof(T) <= BlockCache::kMaxBlock && alignof(T) <= alignof(std::max_align_t));
  void* p = BlockCache::take(sizeof(T));
  try {
    return Pooled<T>(new (p) T(std::forward<Args>(args)...));
  } catch (...) {
    BlockCache::give(p, sizeof(T));
    throw;
  }
}

}  // namespace sag::base
