// The one place that decides which server a request goes to (SPEC §4):
// 1. a valid persistence cookie naming a usable server, 2. a learned session
// cookie, 3. the client's source address, 4. the balancer. Persistence is
// overridden (redispatch) only here. One resolver per backend per worker.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "affinity/backend.h"
#include "affinity/balancer.h"

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
  int64_t now = 0;                         // Unix seconds
  std::span<const uint32_t> excluded;      // servers that already failed
  // The server earlier requests on the same client connection were balanced
  // to: requests that carry no persistence yet follow it (SPEC §4), so
  // pipelined or multiplexed first requests share one server and cookie.
  Server* connection_pin = nullptr;
};

struct AffinityDecision {
  Server* server = nullptr;  // nullptr: no server available (503)
  PersistOutcome outcome = PersistOutcome::kNew;
  bool set_cookie = false;   // the response must carry a fresh cookie
};

class AffinityResolver {
 public:
  // Both must outlive the resolver.
  AffinityResolver(const Backend& backend, Balancer& balancer)
      : backend_(backend), balancer_(balancer) {}

  AffinityDecision resolve(const AffinityRequest& request);
  const Backend& backend() const { return backend_; }

 private:
  const Backend& backend_;
  Balancer& balancer_;
};

}  // namespace sag::affinity
