#include "affinity/model/server.h"

namespace sag::affinity {

Server::Server(uint32_t index, const config::ServerConfig& config, std::string cookie_id,
               std::shared_ptr<State> carried)
    : index_(index),
      name_(config.name),
      endpoint_(config.endpoint),
      backup_(config.backup),
      cookie_id_(std::move(cookie_id)),
      config_weight_(config.weight),
      state_(carried ? std::move(carried) : std::make_shared<State>(config.weight)),
      s_(*state_) {}

std::string Server::apply_admin(std::optional<AdminState> state, std::optional<uint32_t> weight,
                                std::chrono::steady_clock::time_point now) {
  std::string change;
  if (state && *state != admin_state()) {
    const AdminState before = admin_state();
    if (before == AdminState::kMaint) set_up_since(now);
    set_admin_state(*state);
    change += std::string(" state ") + to_string(before) + " -> " + to_string(*state);
  }
  if (weight && *weight != this->weight()) {
    change += " weight " + std::to_string(this->weight()) + " -> " + std::to_string(*weight);
    set_weight(*weight);
  }
  return change;
}

void Server::set_healthy(bool up, std::chrono::steady_clock::time_point now) {
  // Publish the ramp start before the server becomes visible as up, so a
  // balancer never sees it up with an old up_since (full weight at once).
  if (up && !s_.healthy.load(std::memory_order_relaxed)) {
    int64_t ns = now.time_since_epoch().count();
    s_.up_since_ns.store(ns == 0 ? 1 : ns, std::memory_order_relaxed);
  }
  s_.healthy.store(up, std::memory_order_release);
}

uint32_t Server::effective_weight(std::chrono::steady_clock::time_point now,
                                  std::chrono::milliseconds slow_start) const {
  const uint32_t w = weight();
  if (w == 0 || slow_start.count() <= 0) return w;
  const int64_t since = s_.up_since_ns.load(std::memory_order_relaxed);
  const int64_t now_ns = now.time_since_epoch().count();
  if (since == 0 || now_ns == 0) return w;
  const int64_t dur = std::chrono::duration_cast<std::chrono::nanoseconds>(slow_start).count();
  const int64_t elapsed = now_ns - since;
  if (elapsed >= dur) return w;
  const int64_t e = elapsed < 0 ? 0 : elapsed;
  // w * (1 + 9 * e / dur) / 10, in 128 bits (w < 2^32, dur up to days in ns).
  const unsigned __int128 num =
      static_cast<unsigned __int128>(w) * (static_cast<unsigned __int128>(dur) + 9 * e);
  const auto r = static_cast<uint32_t>(num / (static_cast<unsigned __int128>(dur) * 10));
  return r == 0 ? 1 : r;
}

void Server::record_response_time(std::chrono::microseconds t) {
  const uint64_t sample = static_cast<uint64_t>(t.count() < 0 ? 0 : t.count()) << kEwmaShift;
  std::atomic<uint64_t>& ewma = s_.traffic.local().rt_ewma;
  const uint64_t old = ewma.load(std::memory_order_relaxed);
  uint64_t next;
  if (old == 0) {
    next = sample;
  } else {
    // old + (sample - old) / 5, in signed arithmetic.
    next = static_cast<uint64_t>(static_cast<int64_t>(old) +
                                 (static_cast<int64_t>(sample) - static_cast<int64_t>(old)) / 5);
  }
  ewma.store(next == 0 ? 1 : next, std::memory_order_relaxed);
}

bool Server::has_response_time() const {
  for (size_t i = 0; i < s_.traffic.size(); ++i)
    if (s_.traffic[i].rt_ewma.load(std::memory_order_relaxed) != 0) return true;
  return false;
}

std::chrono::microseconds Server::response_time_ewma() const {
  uint64_t sum = 0, n = 0;
  for (size_t i = 0; i < s_.traffic.size(); ++i)
    if (const uint64_t v = s_.traffic[i].rt_ewma.load(std::memory_order_relaxed)) {
      sum += v;
      ++n;
    }
  return std::chrono::microseconds(n ? (sum / n) >> kEwmaShift : 0);
}

uint64_t Server::responses(unsigned status) const {
  if (status < 100 || status >= 600) return 0;
  return s_.traffic.sum(
      [status](const Traffic& t) { return t.responses[status - 100].load(std::memory_order_relaxed); });
}

uint64_t Server::active_requests() const {
  const int64_t n = static_cast<int64_t>(s_.traffic.sum([](const Traffic& t) {
    return static_cast<uint64_t>(t.active.load(std::memory_order_relaxed));
  }));
  return n > 0 ? static_cast<uint64_t>(n) : 0;
}

uint64_t Server::total_requests() const {
  return s_.traffic.sum([](const Traffic& t) { return t.total.load(std::memory_order_relaxed); });
}

}  // namespace sag::affinity
