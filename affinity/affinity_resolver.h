// The one place that decides which server a request goes to (docs/behaviour.md#persistence):
// 1. a valid persistence cookie naming a usable server, 2. a learned session
// cookie, 3. the client's source address, 4. the balancer. Persistence is
// overridden (redispatch) only here. One resolver per backend per worker.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "affinity/store/affinity_store.h"
#include "affinity/model/backend.h"
#include "affinity/balance/balancer.h"

namespace sag::affinity {

enum class PersistOutcome : uint8_t {
  kNew,         // no persistence on the request: balanced
  kCookieHit,
  kLearnHit,
  kSourceHit,
  kRedispatch,  // pinned server unusable: moved
  kInvalid,     // a cookie that failed to decode or verify: balanced
  kExpired,     // a cookie past its dates: balanced
};
const char* to_string(PersistOutcome o);  // as the access log writes it

struct AffinityRequest {
  std::optional<std::string_view> cookie;  // our cookie's value, if sent
  std::optional<std::string_view> learn;   // the learn cookie's value, if sent
  const config::IpAddress* source = nullptr;  // the client, for source persistence
  int64_t now = 0;                         // Unix seconds
  TimePoint steady_now{};                  // for store TTLs
  std::span<const uint32_t> excluded;      // servers that already failed
  // The server earlier requests on the same client connection were balanced
  // to: requests that carry no persistence yet follow it (docs/behaviour.md#persistence), so
  // pipelined or multiplexed first requests share one server and cookie.
  Server* connection_pin = nullptr;
  uint64_t hash = 0;  // the request's hash_key, for hashing balancers
};

struct AffinityDecision {
  Server* server = nullptr;  // nullptr: no server available (503)
  PersistOutcome outcome = PersistOutcome::kNew;
  bool set_cookie = false;   // the response must carry a fresh cookie
  // On a cookie hit: the cookie's creation date (when dated), to be kept
  // whenever the cookie is issued again, so max_life is never extended.
  std::optional<int64_t> cookie_created;
};

class AffinityResolver {
 public:
  // All must outlive the resolver; `store` may be null when the backend has
  // neither learn nor source persistence.
  AffinityResolver(const Backend& backend, Balancer& balancer, AffinityStore* store)
      : backend_(backend), balancer_(balancer), store_(store) {}

  AffinityDecision resolve(const AffinityRequest& request);
  const Backend& backend() const { return backend_; }

  // A server set the learn cookie to `value` (docs/behaviour.md#persistence learn): later
  // requests carrying it go to `server`. forget(): it cleared the cookie.
  void learn(std::string_view value, const Server& server, TimePoint now);
  void forget(std::string_view value);

 private:
  // Store key for one kind of entry ('L' learn, 'S' source) of this backend;
  // built in a reused buffer (the resolver is confined to one worker).
  const AffinityKey& key(char kind, std::string_view value);
  const AffinityKey& source_key(const config::IpAddress& address);
  // A stored entry's server when it exists and may serve the request.
  enum class Entry { kAbsent, kUsable, kUnusable };
  Entry lookup(const AffinityKey& key, const AffinityRequest& request, Server*& server);
  // Writes a balanced decision back to the store (and may move it to the
  // server a concurrent first connection claimed).
  void write_back(const AffinityRequest& request, AffinityDecision& d, bool moved, bool rewrite_learn);

  const Backend& backend_;
  Balancer& balancer_;
  AffinityStore* store_;
  AffinityKey key_;
};

}  // namespace sag::affinity
