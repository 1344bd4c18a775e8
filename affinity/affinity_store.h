// Where persistence entries that are not carried by a cookie live (learned
// session cookies, source addresses, redispatch decisions). Implementations:
// in-process memory (sharded LRU + TTL) and Redis-backed (shared by
// replicas). Calls are made from worker threads on the request path: they
// must not block on I/O, and must be safe to call from every worker at once.
//
// Time is passed in (steady clock), never read inside, so tests decide it.
// Keys are taken as string_view so callers can build them in a reusable
// buffer; implementations copy what they keep.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sag::affinity {

using ServerId = uint32_t;  // index of the server in its backend
using AffinityKey = std::string;  // namespaced: "<backend>\0<kind>\0<value>"
using TimePoint = std::chrono::steady_clock::time_point;
using Duration = std::chrono::milliseconds;

class AffinityStore {
 public:
  virtual ~AffinityStore() = default;
  // The server for `key`, or nullopt when absent or expired at `now`. A hit
  // counts as a use (LRU) but does not extend the entry's TTL: put() again
  // to extend it.
  virtual std::optional<ServerId> find(std::string_view key, TimePoint now) = 0;
  // Inserts or replaces the entry; it expires at now + ttl (ttl <= 0: never,
  // only capacity evicts it).
  virtual void put(std::string_view key, ServerId server, Duration ttl, TimePoint now) = 0;
  virtual void erase(std::string_view key) = 0;
};

}  // namespace sag::affinity
