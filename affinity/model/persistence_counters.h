// How persistence decisions of one backend turned out (docs/behaviour.md#admin-listener
// gateway_persistence_total{result}). Written by every worker once per
// request, each worker into its own slot (base::Sharded); the admin listener
// reads the sums.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "config/base/worker_shard.h"

namespace sag::affinity {

enum class PersistOutcome : uint8_t;

class PersistenceCounters {
 public:
  enum Result : uint8_t {
    kHit,         // cookie, learn or source pin honoured
    kMiss,        // nothing to honour: balanced
    kRedispatch,  // pinned server unusable: moved
    kInvalid,     // a cookie that failed to decode or verify
    kExpired,     // a cookie past its dates
    kResults
  };

  void count(PersistOutcome outcome);
  // Summed over the workers.
  uint64_t total(Result r) const {
    return slots_.sum([r](const Slot& s) { return s[r].load(std::memory_order_relaxed); });
  }

 private:
  using Slot = std::array<std::atomic<uint64_t>, kResults>;
  base::Sharded<Slot> slots_;
};

}  // namespace sag::affinity
