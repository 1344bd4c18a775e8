// Where persistence entries that are not carried by a cookie live (learned
// session cookies, source addresses, redispatch decisions). Implementations:
// in-process memory (sharded LRU + TTL) and Redis-backed (shared by
// replicas). Calls are made from worker threads on the request path: they
// must not block on I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace sag::affinity {

using ServerId = uint32_t;  // index of the server in its backend
using AffinityKey = std::string;  // namespaced: "<backend>\0<kind>\0<value>"
using TimePoint = std::chrono::steady_clock::time_point;
using Duration = std::chrono::milliseconds;

class AffinityStore {
 public:
  virtual ~AffinityStore() = default;
  virtual std::optional<ServerId> find(const AffinityKey& key, TimePoint now) = 0;
  virtual void put(const AffinityKey& key, ServerId server, Duration ttl) = 0;
  virtual void erase(const AffinityKey& key) = 0;
};

}  // namespace sag::affinity
