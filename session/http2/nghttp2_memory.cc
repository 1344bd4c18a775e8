#include "session/http2/nghttp2_memory.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "config/base/block_cache.h"

namespace sag::session {
namespace {

// The size (with this header) in front of every block; 16 bytes keep the
// caller's pointer aligned as malloc's would be.
struct alignas(std::max_align_t) Prefix {
  size_t total;
};
static_assert(sizeof(Prefix) == alignof(std::max_align_t));

constexpr size_t kMaxPooled = base::BlockCache::kMaxBlock;

void* take(size_t size, void*) {
  const size_t total = size + sizeof(Prefix);
  void* raw = total <= kMaxPooled ? base::BlockCache::take(total) : std::malloc(total);
  if (!raw) return nullptr;
  static_cast<Prefix*>(raw)->total = total;
  return static_cast<Prefix*>(raw) + 1;
}

void give(void* p, void*) {
  if (!p) return;
  Prefix* h = static_cast<Prefix*>(p) - 1;
  if (h->total <= kMaxPooled) {
    base::BlockCache::give(h, h->total);
  } else {
    std::free(h);
  }
}

void* take_zeroed(size_t n, size_t size, void* user) {
  if (size != 0 && n > (SIZE_MAX - sizeof(Prefix)) / size) return nullptr;
  void* p = take(n * size, user);
  if (p) std::memset(p, 0, n * size);
  return p;
}

void* resize(void* p, size_t size, void* user) {
  if (!p) return take(size, user);
  if (size == 0) {
    give(p, user);
    return nullptr;
  }
  const size_t old = (static_cast<Prefix*>(p) - 1)->total - sizeof(Prefix);
  void* q = take(size, user);
  if (!q) return nullptr;
  std::memcpy(q, p, old < size ? old : size);
  give(p, user);
  return q;
}

nghttp2_mem g_mem{nullptr, take, give, take_zeroed, resize};

}  // namespace

nghttp2_mem* nghttp2_pooled_memory() { return &g_mem; }

}  // namespace sag::session
