#include "affinity/affinity_resolver.h"

namespace sag::affinity {

void PersistenceCounters::count(PersistOutcome outcome) {
  Result r = kMiss;
  switch (outcome) {
    case PersistOutcome::kCookieHit:
    case PersistOutcome::kLearnHit:
    case PersistOutcome::kSourceHit: r = kHit; break;
    case PersistOutcome::kNew: r = kMiss; break;
    case PersistOutcome::kRedispatch: r = kRedispatch; break;
    case PersistOutcome::kInvalid: r = kInvalid; break;
    case PersistOutcome::kExpired: r = kExpired; break;
  }
  base::bump(slots_.local()[r]);
}

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

const AffinityKey& AffinityResolver::key(char kind, std::string_view value) {
  key_.assign(backend_.name());
  key_ += '\0';
  key_ += kind;
  key_ += '\0';
  key_ += value;
  return key_;
}

const AffinityKey& AffinityResolver::source_key(const config::IpAddress& address) {
  const auto& src = *backend_.config().persistence.source;
  const uint32_t bits = address.v6 ? src.ipv6_mask : src.ipv4_mask;
  const size_t bytes = address.v6 ? 16 : 4;
  char masked[17];
  masked[0] = address.v6 ? '6' : '4';
  for (size_t i = 0; i < bytes; ++i) {
    const uint32_t keep = bits >= (i + 1) * 8 ? 8 : (bits > i * 8 ? bits - i * 8 : 0);
    masked[i + 1] = static_cast<char>(address.bytes[i] & static_cast<uint8_t>(0xff00u >> keep));
  }
  return key('S', std::string_view(masked, bytes + 1));
}

AffinityResolver::Entry AffinityResolver::lookup(const AffinityKey& k, const AffinityRequest& request,
                                                 Server*& server) {
  auto id = store_->find(k, request.steady_now);
  if (!id) return Entry::kAbsent;
  server = backend_.server(*id);
  if (!server) return Entry::kAbsent;
  return server->usable_for_pinned() && !is_excluded(request.excluded, server->index())
             ? Entry::kUsable
             : Entry::kUnusable;
}

void AffinityResolver::learn(std::string_view value, const Server& server, TimePoint now) {
  const auto& learn = backend_.config().persistence.learn;
  if (!store_ || !learn || value.empty()) return;
  store_->put(key('L', value), server.index(), learn->ttl, now);
}

void AffinityResolver::forget(std::string_view value) {
  if (!store_ || !backend_.config().persistence.learn) return;
  store_->erase(key('L', value));
}

AffinityDecision AffinityResolver::resolve(const AffinityRequest& request) {
  AffinityDecision d;
  const auto& persistence = backend_.config().persistence;
  const StickyCookie* cookie = backend_.cookie();
  bool moved = false;  // a pin exists but its server can't take the request
  if (cookie && request.cookie) {
    CookieLookup lookup = cookie->decode(*request.cookie, request.now);
    switch (lookup.status) {
      case CookieStatus::kValid:
        if (lookup.server->usable_for_pinned() &&
            !is_excluded(request.excluded, lookup.server->index())) {
          d.server = lookup.server;
          d.outcome = PersistOutcome::kCookieHit;
          d.set_cookie = lookup.refresh;
          d.cookie_created = lookup.created;  // kept on refresh or rewrite
          return d;
        }
        // The pinned server can't take it: move the session, or refuse.
        if (!backend_.config().redispatch) return {nullptr, PersistOutcome::kCookieHit, false, std::nullopt};
        moved = true;
        break;
      case CookieStatus::kInvalid:
        d.outcome = PersistOutcome::kInvalid;
        break;
      case CookieStatus::kExpired:
        d.outcome = PersistOutcome::kExpired;
        break;
    }
  }

  // Learned session cookie, then client address (docs/behaviour.md#persistence steps 2 and 3).
  bool rewrite_learn = false;
  if (store_ && persistence.learn && request.learn && !request.learn->empty()) {
    const AffinityKey& k = key('L', *request.learn);
    Server* s = nullptr;
    switch (lookup(k, request, s)) {
      case Entry::kUsable:
        store_->refresh(k, s->index(), persistence.learn->ttl, request.steady_now);  // kept alive by use
        d.server = s;
        d.outcome = moved ? PersistOutcome::kRedispatch : PersistOutcome::kLearnHit;
        d.set_cookie = cookie != nullptr;
        return d;
      case Entry::kUnusable:
        if (!backend_.config().redispatch) return {nullptr, PersistOutcome::kLearnHit, false, std::nullopt};
        moved = rewrite_learn = true;
        break;
      case Entry::kAbsent:
        break;
    }
  }
  if (store_ && persistence.source && request.source) {
    const AffinityKey& k = source_key(*request.source);
    Server* s = nullptr;
    switch (lookup(k, request, s)) {
      case Entry::kUsable:
        store_->refresh(k, s->index(), persistence.source->ttl, request.steady_now);
        d.server = s;
        d.outcome = moved ? PersistOutcome::kRedispatch : PersistOutcome::kSourceHit;
        d.set_cookie = cookie != nullptr;
        if (rewrite_learn)
          store_->put(key('L', *request.learn), s->index(), persistence.learn->ttl, request.steady_now);
        return d;
      case Entry::kUnusable:
        if (!backend_.config().redispatch) return {nullptr, PersistOutcome::kSourceHit, false, std::nullopt};
        moved = true;
        break;
      case Entry::kAbsent:
        break;
    }
  }

  Server* pin = request.connection_pin;
  // The pin stands for a session not established yet: a draining server
  // takes no new sessions, so it doesn't keep the pin.
  if (pin && pin->usable_for_new() && !is_excluded(request.excluded, pin->index())) {
    d.server = pin;
  } else {
    d.server = balancer_.select(SelectContext{request.excluded, request.hash, request.steady_now});
  }
  if (moved) d.outcome = PersistOutcome::kRedispatch;
  d.set_cookie = cookie != nullptr && d.server != nullptr;
  if (d.server && store_) write_back(request, d, moved, rewrite_learn);
  return d;
}

// The balancer's choice written back so the session stays on it
// (docs/behaviour.md#persistence). A new source entry is claimed, not put:
// a connection from the same address that chose meanwhile on another
// worker keeps its choice, and this one joins it (SPEC §8: parallel first
// connections get one server).
void AffinityResolver::write_back(const AffinityRequest& request, AffinityDecision& d, bool moved,
                                  bool rewrite_learn) {
  const auto& persistence = backend_.config().persistence;
  if (persistence.source && request.source) {
    const AffinityKey& k = source_key(*request.source);
    const ServerId ours = d.server->index();
    if (moved) {
      store_->put(k, ours, persistence.source->ttl, request.steady_now);
    } else {
      const ServerId won = store_->claim(k, ours, persistence.source->ttl, request.steady_now);
      Server* other = won == ours ? nullptr : backend_.server(won);
      if (other && other->usable_for_pinned() && !is_excluded(request.excluded, won)) {
        d.server = other;
        d.outcome = PersistOutcome::kSourceHit;
      } else if (won != ours) {
        store_->put(k, ours, persistence.source->ttl, request.steady_now);
      }
    }
  }
  if (rewrite_learn)
    store_->put(key('L', *request.learn), d.server->index(), persistence.learn->ttl, request.steady_now);
}

}  // namespace sag::affinity
