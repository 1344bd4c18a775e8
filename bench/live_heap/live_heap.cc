// LD_PRELOAD live-heap tracker for bench/idle_breakdown.sh: which code holds
// the heap a process keeps, by call stack. Nothing is recorded until
// live_heap_on() is called (from gdb); from then on every allocation that
// is still live is kept with its size and its first frames, and
// live_heap_dump(path) writes them grouped by stack, largest first, with
// frames as backtrace_symbols() gives them (module(+offset)).
//
// Not for production and not thread-fast: one mutex around a fixed
// open-addressing table (4M entries, mmap'd when recording starts). The
// process's own caches (free lists that keep freed blocks) count as live:
// a block is attributed to the code that first took it from malloc.
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

namespace {

constexpr int kDepth = 12;  // frames kept: the first two are ours and malloc's
constexpr size_t kCap = size_t{1} << 22;
void* const kTombstone = reinterpret_cast<void*>(1);

struct Rec {
  void* p;
  size_t n;
  void* stack[kDepth];
  int depth;
};

Rec* g_table = nullptr;
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
volatile bool g_on = false;
thread_local bool t_inside = false;  // our own allocations are not recorded

void* (*real_malloc)(size_t);
void (*real_free)(void*);
void* (*real_calloc)(size_t, size_t);
void* (*real_realloc)(void*, size_t);
int (*real_posix_memalign)(void**, size_t, size_t);
void* (*real_aligned_alloc)(size_t, size_t);

// dlsym may calloc before real_calloc is known: served from here.
alignas(16) char g_boot[65536];
size_t g_boot_used = 0;
bool from_boot(void* p) { return p >= g_boot && p < g_boot + sizeof g_boot; }

size_t slot_of(void* p) {
  return static_cast<size_t>((reinterpret_cast<uintptr_t>(p) >> 4) * 0x9E3779B97F4A7C15ull >> 42) & (kCap - 1);
}

template <class F>
F resolve(F& f, const char* name) {
  if (!f) f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
  return f;
}

void note_alloc(void* p, size_t n) {
  if (!g_on || t_inside || p == nullptr) return;
  t_inside = true;
  Rec r;
  r.p = p;
  r.n = n;
  r.depth = backtrace(r.stack, kDepth);
  pthread_mutex_lock(&g_mu);
  size_t i = slot_of(p);
  while (g_table[i].p != nullptr && g_table[i].p != kTombstone) i = (i + 1) & (kCap - 1);
  g_table[i] = r;
  pthread_mutex_unlock(&g_mu);
  t_inside = false;
}

void note_free(void* p) {
  if (g_table == nullptr || p == nullptr || t_inside) return;
  pthread_mutex_lock(&g_mu);
  for (size_t i = slot_of(p); g_table[i].p != nullptr; i = (i + 1) & (kCap - 1)) {
    if (g_table[i].p == p) {
      g_table[i].p = kTombstone;
      break;
    }
  }
  pthread_mutex_unlock(&g_mu);
}

}  // namespace

extern "C" {

void* malloc(size_t n) {
  void* p = resolve(real_malloc, "malloc")(n);
  note_alloc(p, n);
  return p;
}

void free(void* p) {
  if (from_boot(p)) return;
  note_free(p);
  resolve(real_free, "free")(p);
}

void* calloc(size_t a, size_t b) {
  if (real_calloc == nullptr) {
    static bool resolving = false;
    if (resolving) {
      void* p = g_boot + g_boot_used;
      g_boot_used += (a * b + 15) & ~size_t{15};
      return p;
    }
    resolving = true;
    real_calloc = reinterpret_cast<decltype(real_calloc)>(dlsym(RTLD_NEXT, "calloc"));
    resolving = false;
  }
  void* p = real_calloc(a, b);
  note_alloc(p, a * b);
  return p;
}

void* realloc(void* p, size_t n) {
  note_free(p);
  void* q = resolve(real_realloc, "realloc")(p, n);
  note_alloc(q, n);
  return q;
}

int posix_memalign(void** out, size_t align, size_t n) {
  const int rc = resolve(real_posix_memalign, "posix_memalign")(out, align, n);
  if (rc == 0) note_alloc(*out, n);
  return rc;
}

void* aligned_alloc(size_t align, size_t n) {
  void* p = resolve(real_aligned_alloc, "aligned_alloc")(align, n);
  note_alloc(p, n);
  return p;
}

// Starts recording (what is live from now on).
void live_heap_on() {
  if (g_table == nullptr)
    g_table = static_cast<Rec*>(
        mmap(nullptr, sizeof(Rec) * kCap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  g_on = true;
}

// Writes "TOTAL <bytes>", then per stack "== <bytes> <count>" and its
// frames (without the tracker's and malloc's own).
void live_heap_dump(const char* path) {
  const bool was_on = g_on;
  g_on = false;
  t_inside = true;
  std::map<std::vector<void*>, std::pair<size_t, size_t>> by_stack;
  size_t total = 0;
  pthread_mutex_lock(&g_mu);
  for (size_t i = 0; g_table != nullptr && i < kCap; ++i) {
    const Rec& r = g_table[i];
    if (r.p == nullptr || r.p == kTombstone) continue;
    auto& e = by_stack[std::vector<void*>(r.stack + std::min(r.depth, 2), r.stack + r.depth)];
    e.first += r.n;
    ++e.second;
    total += r.n;
  }
  pthread_mutex_unlock(&g_mu);
  std::vector<std::pair<size_t, const std::vector<void*>*>> order;
  for (const auto& [stack, e] : by_stack) order.emplace_back(e.first, &stack);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  if (FILE* f = fopen(path, "w")) {
    fprintf(f, "TOTAL %zu\n", total);
    for (const auto& [bytes, stack] : order) {
      fprintf(f, "== %zu %zu\n", bytes, by_stack[*stack].second);
      char** names = backtrace_symbols(stack->data(), static_cast<int>(stack->size()));
      for (size_t j = 0; names != nullptr && j < stack->size(); ++j) fprintf(f, "   %s\n", names[j]);
      free(names);
    }
    fclose(f);
  }
  t_inside = false;
  g_on = was_on;
}

}  // extern "C"
