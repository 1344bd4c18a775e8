#include "affinity/affinity_resolver.h"

namespace sag::affinity {

const char* to_string(PersistOutcome o) {
  switch (o) {
    case PersistOutcome::kNew: return "new";
    case PersistOutcome::kCookieHit: return "cookie-hit";
    case PersistOutcome::kLearnHit: return "learn-hit";
    case PersistOutcome::kSourceHit: return "source-hit";
    case PersistOutcome::kRedispatch: return "redispatch";
    case PersistOutcome::kInvalid: return "invalid";
    case PersistOutcome::kExpired: return "expired";
  }
  return "-";
}

AffinityDecision AffinityResolver::resolve(const AffinityRequest& request) {
  AffinityDecision d;
  const StickyCookie* cookie = backend_.cookie();
  if (cookie && request.cookie) {
    CookieLookup lookup = cookie->decode(*request.cookie, request.now);
    switch (lookup.status) {
      case CookieStatus::kValid:
        if (lookup.server->usable_for_pinned() &&
            !is_excluded(request.excluded, lookup.server->index())) {
          d.server = lookup.server;
          d.outcome = PersistOutcome::kCookieHit;
          d.set_cookie = lookup.refresh;
          return d;
        }
        // The pinned server can't take it: move the session, or refuse.
        if (!backend_.config().redispatch) return {nullptr, PersistOutcome::kCookieHit, false};
        d.outcome = PersistOutcome::kRedispatch;
        break;
      case CookieStatus::kInvalid:
        d.outcome = PersistOutcome::kInvalid;
        break;
      case CookieStatus::kExpired:
        d.outcome = PersistOutcome::kExpired;
        break;
    }
  }
  Server* pin = request.connection_pin;
  // The pin stands for a session not established yet: a draining server
  // takes no new sessions, so it doesn't keep the pin.
  if (pin && pin->usable_for_new() && !is_excluded(request.excluded, pin->index())) {
    d.server = pin;
  } else {
    d.server = balancer_.select(SelectContext{request.excluded, 0});
  }
  d.set_cookie = cookie != nullptr && d.server != nullptr;
  return d;
}

}  // namespace sag::affinity
