#include "config/base/worker_shard.h"

namespace sag::base {

namespace {
std::atomic<size_t> g_slots{1};
}

void set_worker_shards(size_t slots) {
  g_slots.store(slots == 0 ? 1 : slots, std::memory_order_relaxed);
}

size_t worker_shards() { return g_slots.load(std::memory_order_relaxed); }

}  // namespace sag::base
