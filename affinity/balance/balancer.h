// Chooses a server for a request that has no usable persistence (docs/behaviour.md#persistence
// step 4). One Balancer instance per backend per worker, so implementations
// keep plain (non-atomic) state and need no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>

namespace sag::affinity {

class Server;

struct SelectContext {
  // Servers already tried (and failed) for this request; never returned.
  std::span<const uint32_t> excluded;
  // Request-derived key for hashing balancers (`source`, `hash`); unused by
  // others. Compute it with stable_hash64() (affinity/balance/stable_hash.h) so every
  // replica maps a key to the same server.
  uint64_t hash = 0;
  // Now, for slow start. The default (the steady clock's epoch) means "no
  // clock": slow start is then not applied.
  std::chrono::steady_clock::time_point now{};
};

class Balancer {
 public:
  virtual ~Balancer() = default;
  // A server that is usable for new sessions and not excluded, or nullptr.
  // Backup servers are chosen only when no other server is usable. Runs in
  // O(servers), never allocates.
  virtual Server* select(const SelectContext& ctx) = 0;
};

inline bool is_excluded(std::span<const uint32_t> excluded, uint32_t index) {
  for (uint32_t e : excluded)
    if (e == index) return true;
  return false;
}

}  // namespace sag::affinity
