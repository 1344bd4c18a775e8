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

#include <algorithm>
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
  // counts as a use (LRU) but does not extend the entry's TTL: refresh()
  // does.
  virtual std::optional<ServerId> find(std::string_view key, TimePoint now) = 0;
  // Inserts or replaces the entry (a new or changed pin); it expires at
  // now + ttl (ttl <= 0: never, only capacity evicts it).
  virtual void put(std::string_view key, ServerId server, Duration ttl, TimePoint now) = 0;
  // put() unless a live entry exists: returns the server the entry names
  // afterwards (`server` when it was filed, else the existing one, left as
  // it is). Atomic within the process, so parallel first connections from
  // one address agree (SPEC §8); a store shared by replicas settles a race
  // between replicas as it can (see its own contract).
  virtual ServerId claim(std::string_view key, ServerId server, Duration ttl, TimePoint now) = 0;
  // A hit on an entry that named `server`: its expiry moves to now + ttl if
  // it still names `server` (a change made meanwhile is kept, never
  // undone); nothing happens when it is absent or expired. Implementations
  // may skip an extension smaller than refresh_slack(ttl), so an entry in
  // use lives at most that much less than ttl past its last use (as docs/behaviour.md#persistence
  // refreshes cookie dates).
  virtual void refresh(std::string_view key, ServerId server, Duration ttl, TimePoint now) = 0;
  virtual void erase(std::string_view key) = 0;
};

// Helpers shared by the implementations: expiries as steady-clock
// nanoseconds, kNoExpiry for an entry that never expires.
inline constexpr int64_t kNoExpiry = INT64_MAX;

inline int64_t to_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// now_ns + ttl, or kNoExpiry when ttl <= 0 or the sum would overflow.
inline int64_t expiry_ns(int64_t now_ns, Duration ttl) {
  const int64_t ttl_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();
  return ttl_ns <= 0 || now_ns > kNoExpiry - ttl_ns ? kNoExpiry : now_ns + ttl_ns;
}

// min(ttl/4, 60 s): the largest TTL extension refresh() may skip.
inline Duration refresh_slack(Duration ttl) {
  return std::min<Duration>(ttl / 4, std::chrono::seconds(60));
}

}  // namespace sag::affinity
