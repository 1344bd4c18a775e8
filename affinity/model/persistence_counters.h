// How persistence decisions of one backend turned out (docs/behaviour.md#admin-listener
// gateway_persistence_total{result}). Written by every worker, read by the
// admin listener: relaxed atomics, each on the request path once.
#pragma once

#include <atomic>
#include <cstdint>

namespace sag::affinity {

enum class PersistOutcome : uint8_t;

struct PersistenceCounters {
  std::atomic<uint64_t> hit{0};         // cookie, learn or source pin honoured
  std::atomic<uint64_t> miss{0};        // nothing to honour: balanced
  std::atomic<uint64_t> redispatch{0};  // pinned server unusable: moved
  std::atomic<uint64_t> invalid{0};     // a cookie that failed to decode or verify
  std::atomic<uint64_t> expired{0};     // a cookie past its dates

  void count(PersistOutcome outcome);
};

}  // namespace sag::affinity
