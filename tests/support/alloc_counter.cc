// LD_PRELOAD library that counts heap allocations of any kind (malloc,
// calloc, realloc, aligned_alloc, posix_memalign, memalign: operator new
// and Asio's aligned frames end in one of them) and, when the process
// exits, writes "ALLOCATIONS <n>" to the file named by SAG_ALLOC_COUNT_FILE
// (or stderr). Used by tests/integration/test_allocations.py to count the
// allocations per request of a real gateway exchange.
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace {

std::atomic<unsigned long> g_count{0};
// dlsym itself may call calloc before the real one is known: served from
// here, never freed.
alignas(16) char g_boot[8192];
size_t g_boot_used = 0;

template <class F>
F real(F& slot, const char* name) {
  if (!slot) slot = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
  return slot;
}

void bump() { g_count.fetch_add(1, std::memory_order_relaxed); }

bool from_boot(void* p) { return p >= g_boot && p < g_boot + sizeof g_boot; }

}  // namespace

extern "C" {

void* malloc(size_t n) {
  static void* (*f)(size_t);
  bump();
  return real(f, "malloc")(n);
}

void* calloc(size_t a, size_t b) {
  static void* (*f)(size_t, size_t);
  static bool resolving = false;
  if (!f) {
    if (resolving) {
      void* p = g_boot + g_boot_used;
      g_boot_used += (a * b + 15) & ~size_t{15};
      return p;
    }
    resolving = true;
    real(f, "calloc");
    resolving = false;
  }
  bump();
  return f(a, b);
}

void* realloc(void* p, size_t n) {
  static void* (*f)(void*, size_t);
  bump();
  return real(f, "realloc")(p, n);
}

void* aligned_alloc(size_t a, size_t n) {
  static void* (*f)(size_t, size_t);
  bump();
  return real(f, "aligned_alloc")(a, n);
}

int posix_memalign(void** p, size_t a, size_t n) {
  static int (*f)(void**, size_t, size_t);
  bump();
  return real(f, "posix_memalign")(p, a, n);
}

void* memalign(size_t a, size_t n) {
  static void* (*f)(size_t, size_t);
  bump();
  return real(f, "memalign")(a, n);
}

void free(void* p) {
  static void (*f)(void*);
  if (from_boot(p)) return;
  real(f, "free")(p);
}

}  // extern "C"

__attribute__((destructor)) static void report() {
  char line[64];
  const int n = std::snprintf(line, sizeof line, "ALLOCATIONS %lu\n", g_count.load());
  int fd = 2;
  if (const char* path = std::getenv("SAG_ALLOC_COUNT_FILE"))
    fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0 && n > 0) (void)!::write(fd, line, static_cast<size_t>(n));
  if (fd > 2) ::close(fd);
}
