#include "tls/openssl_memory.h"

#include <malloc.h>
#include <openssl/crypto.h>

#include <cstdint>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#define SAG_OPENSSL_CACHE_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAG_OPENSSL_CACHE_OFF 1
#endif
#endif

namespace sag::tls {
namespace {

#ifdef SAG_OPENSSL_CACHE_OFF
constexpr bool kCache = false;  // ASan must see every block come and go
#else
constexpr bool kCache = true;
#endif

// Per-thread free lists of blocks malloc made for OpenSSL, by the exact
// usable size malloc gave them, so a cached block is the very block malloc
// would have returned: no header, no rounding, idle memory unchanged. Only
// what churns is kept: small records (usable <= 256) and record buffers
// (16 KiB + overhead). Everything else goes straight to malloc/free.
constexpr size_t kSmallMax = 256;
constexpr size_t kRecordMin = 16 * 1024, kRecordMax = 20 * 1024;
constexpr uint32_t kSmallCap = 256, kRecordCap = 16;

struct Node {
  Node* next;
  size_t usable;
};

struct Lists {
  Node* small[kSmallMax / 16 + 1] = {};
  uint32_t small_count[kSmallMax / 16 + 1] = {};
  Node* record = nullptr;
  uint32_t record_count = 0;
  ~Lists();
};

thread_local bool t_dead = false;
thread_local Lists t_lists;

Lists::~Lists() {
  t_dead = true;
  for (Node*& head : small) {
    while (Node* n = head) {
      head = n->next;
      std::free(n);
    }
  }
  while (Node* n = record) {
    record = n->next;
    std::free(n);
  }
}

// The usable size glibc gives malloc(n) for small n: chunks are multiples
// of 16 with 8 bytes of header, at least 32.
constexpr size_t usable_for(size_t n) { return n <= 24 ? 24 : ((n + 8 + 15) & ~size_t{15}) - 8; }
static_assert(usable_for(1) == 24 && usable_for(24) == 24 && usable_for(25) == 40 &&
              usable_for(40) == 40 && usable_for(41) == 56);

void* take(size_t n, const char*, int) {
  if (kCache && !t_dead && n > 0) {
    Lists& l = t_lists;
    if (n <= kSmallMax - 8) {
      const size_t i = usable_for(n) / 16;
      if (Node* b = l.small[i]) {
        l.small[i] = b->next;
        --l.small_count[i];
        return b;
      }
    } else if (n > kRecordMin && n <= kRecordMax && l.record && l.record->usable >= n) {
      Node* b = l.record;
      l.record = b->next;
      --l.record_count;
      return b;
    }
  }
  return std::malloc(n);
}

void give(void* p, const char*, int) {
  if (!p) return;
  if (kCache && !t_dead) {
    Lists& l = t_lists;
    const size_t u = malloc_usable_size(p);
    auto* b = static_cast<Node*>(p);
    if (u <= kSmallMax && u >= sizeof(Node) && u % 16 == 8 && l.small_count[u / 16] < kSmallCap) {
      b->next = l.small[u / 16];
      l.small[u / 16] = b;
      ++l.small_count[u / 16];
      return;
    }
    if (u > kRecordMin && u <= kRecordMax + 64 && l.record_count < kRecordCap) {
      b->usable = u;
      b->next = l.record;
      l.record = b;
      ++l.record_count;
      return;
    }
  }
  std::free(p);
}

void* resize(void* p, size_t n, const char* file, int line) {
  if (!p) return take(n, file, line);
  // A cached block is a malloc block, so realloc can take it as it is.
  return std::realloc(p, n);
}

// OpenSSL accepts the functions only before its first allocation, and
// static initializers (Asio's OpenSSL init among them) allocate before
// main: installed by a constructor that runs ahead of them.
bool g_routed = false;
__attribute__((constructor(101))) void install() {
  g_routed = CRYPTO_set_mem_functions(take, resize, give) == 1;
}

}  // namespace

bool route_openssl_memory() {
  if (!g_routed) g_routed = CRYPTO_set_mem_functions(take, resize, give) == 1;
  return g_routed;
}

}  // namespace sag::tls
