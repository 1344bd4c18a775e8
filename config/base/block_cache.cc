#include "config/base/block_cache.h"

#include <bit>

#if defined(__SANITIZE_ADDRESS__)
#define SAG_BLOCK_CACHE_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAG_BLOCK_CACHE_OFF 1
#endif
#endif

namespace sag::base {

namespace block_cache_detail {
constinit thread_local ThreadBlocks t_blocks{};
}

namespace {
using block_cache_detail::t_blocks;

using block_cache_detail::class_of;
using block_cache_detail::class_size;
using block_cache_detail::ThreadBlocks;

// Frees the thread's blocks at its exit, and from then on sends frees to
// the heap; constructed by the thread's first take (thread_blocks()).
struct Reaper {
  bool armed = false;
  ~Reaper();
};
thread_local Reaper t_reaper;

static_assert(class_of(64) == 0 && class_of(65) == 1 && class_of(128) == 1 &&
              class_of(BlockCache::kMaxBlock) == BlockCache::kClasses - 1);

Reaper::~Reaper() {
  ThreadBlocks& t = t_blocks;
  t.alive = false;
  t.dead = true;
  for (size_t c = 0; c < BlockCache::kClasses; ++c) {
    while (ThreadBlocks::Node* n = t.head[c]) {
      t.head[c] = n->next;
      ::operator delete(n);
    }
    t.count[c] = t.low[c] = 0;
  }
}

}  // namespace

#ifdef SAG_BLOCK_CACHE_OFF
const bool BlockCache::kCaching = false;
#else
const bool BlockCache::kCaching = true;
#endif

// The calling thread's blocks, made on first use; null once destroyed.
static ThreadBlocks* thread_blocks() {
  ThreadBlocks& t = t_blocks;
  if (__builtin_expect(t.alive, 1)) return &t;
  if (t.dead || !BlockCache::kCaching) return nullptr;
  t_reaper.armed = true;  // constructs it: its destructor runs at thread exit
  t.alive = true;
  return &t;
}

// Off the inline path: the thread's first use, a thread without caching
// (ASan, or exiting), an empty list, a full one.
void* BlockCache::take_slow(size_t bytes) {
  const size_t c = class_of(bytes);
  ThreadBlocks* tb = thread_blocks();
  if (!tb) return ::operator new(class_size(c));
  ThreadBlocks& t = *tb;
  ++t.outstanding;
  if (ThreadBlocks::Node* n = t.head[c]) {
    t.head[c] = n->next;
    if (--t.count[c] < t.low[c]) t.low[c] = t.count[c];
    return n;
  }
  return ::operator new(class_size(c));
}

void BlockCache::give_slow(void* p, size_t bytes) noexcept {
  const size_t c = class_of(bytes);
  ThreadBlocks* tb = thread_blocks();
  if (!tb) {
    ::operator delete(p);
    return;
  }
  ThreadBlocks& t = *tb;
  --t.outstanding;
  if ((t.count[c] + 1) * class_size(c) > kMaxCachedBytes) {
    ::operator delete(p);
    return;
  }
  auto* n = static_cast<ThreadBlocks::Node*>(p);
  n->next = t.head[c];
  t.head[c] = n;
  ++t.count[c];
}

long BlockCache::outstanding() noexcept { return t_blocks.alive ? t_blocks.outstanding : 0; }

size_t BlockCache::trim() noexcept {
  ThreadBlocks* tb = thread_blocks();
  if (!tb) return 0;
  ThreadBlocks& t = *tb;
  size_t freed = 0;
  for (size_t c = 0; c < kClasses; ++c) {
    // The list is LIFO: the `low` blocks at its far end sat unused all
    // period. Unlink them past the first count - low.
    const size_t drop = t.low[c];
    if (drop > 0) {
      const size_t keep = t.count[c] - drop;
      ThreadBlocks::Node** link = &t.head[c];
      for (size_t i = 0; i < keep; ++i) link = &(*link)->next;
      ThreadBlocks::Node* n = *link;
      *link = nullptr;
      while (n != nullptr) {
        ThreadBlocks::Node* next = n->next;
        ::operator delete(n);
        n = next;
      }
      t.count[c] = keep;
      freed += drop * class_size(c);
    }
    t.low[c] = t.count[c];
  }
  return freed;
}

size_t BlockCache::cached_bytes() noexcept {
  ThreadBlocks* tb = thread_blocks();
  if (!tb) return 0;
  size_t bytes = 0;
  for (size_t c = 0; c < kClasses; ++c) bytes += tb->count[c] * class_size(c);
  return bytes;
}

}  // namespace sag::base
