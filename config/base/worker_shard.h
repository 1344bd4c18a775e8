// Per-worker counters (issue 12, per-core scaling): what every request
// writes lives in one slot per worker, so no cache line is written by two
// workers; readers (the admin thread) sum the slots.
//
// Slots: 0 is shared by every thread that is not a worker (health checker,
// Redis client, tests, the main thread); worker i writes slot i + 1 only.
// The number of slots is fixed once per process, before the objects that
// hold sharded counters are built (set_worker_shards); an object built
// earlier, or a worker past the count, falls back to slot 0, which stays
// correct because every write is an atomic add.
//
// Cost: a relaxed fetch_add on a line only this core writes (an uncontended
// locked add, a few cycles, no line transfer). Plain load+store would save
// the lock prefix but would be wrong in slot 0.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sag::base {

// Slots for workers + 1 (the shared slot). Call once, before the sharded
// objects are built and the workers start. Default: 1 (everything shares).
void set_worker_shards(size_t slots);
size_t worker_shards();

// This thread's slot; the worker thread sets it first thing (index + 1).
inline thread_local size_t t_worker_slot = 0;

// A T per slot, each on its own cache lines. T's counters are atomics
// (written by their slot's thread and slot 0's many threads, read by any).
template <class T>
class Sharded {
 public:
  Sharded() : n_(worker_shards()), slots_(new Slot[n_]) {}

  // The calling thread's slot.
  T& local() { return slots_[t_worker_slot < n_ ? t_worker_slot : 0].value; }
  size_t size() const { return n_; }
  const T& operator[](size_t i) const { return slots_[i].value; }
  T& operator[](size_t i) { return slots_[i].value; }

  // Sum of `f(slot)` over every slot.
  template <class F>
  uint64_t sum(F f) const {
    uint64_t n = 0;
    for (size_t i = 0; i < n_; ++i) n += f(slots_[i].value);
    return n;
  }

 private:
  struct alignas(64) Slot {
    T value;
  };
  size_t n_;
  std::unique_ptr<Slot[]> slots_;
};

inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace sag::base
