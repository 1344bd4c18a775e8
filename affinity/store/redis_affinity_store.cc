#include "affinity/store/redis_affinity_store.h"

#include <mutex>
#include <thread>

#include "affinity/store/redis_store_core.h"

#include <boost/asio/post.hpp>

namespace sag::affinity {
using namespace std::chrono_literals;

RedisAffinityStore::RedisAffinityStore(redis::RedisClient& client, std::vector<BackendServers> servers,
                                       Options options, const Clock& clock, std::function<void()> on_error)
    : core_(std::make_shared<Core>(client, std::move(servers), std::move(options), clock, std::move(on_error))) {
  core_->start();
}

RedisAffinityStore::~RedisAffinityStore() = default;

namespace {
// The request path's sealed key: one buffer per thread, reused.
std::string& sealed_buffer() {
  thread_local std::string buf;
  return buf;
}
}  // namespace

std::optional<ServerId> RedisAffinityStore::find(std::string_view key, TimePoint now) {
  std::string& sealed = sealed_buffer();
  core_->sealer.seal(key, sealed);
  return core_->local.find(sealed, now);
}

void RedisAffinityStore::put(std::string_view key, ServerId server, Duration ttl, TimePoint now) {
  Core::Op op;
  core_->sealer.seal(key, op.key);
  core_->local.put(op.key, server, ttl, now);
  op.server = server;
  op.ttl = ttl;
  op.now = now;
  core_->enqueue(std::move(op));
}

ServerId RedisAffinityStore::claim(std::string_view key, ServerId server, Duration ttl, TimePoint now) {
  Core::Op op;
  core_->sealer.seal(key, op.key);
  const ServerId won = core_->local.claim(op.key, server, ttl, now);
  if (won != server) return won;  // known here already: nothing to write
  op.kind = Core::Op::Kind::kClaim;
  op.server = server;
  op.ttl = ttl;
  op.now = now;
  core_->enqueue(std::move(op));
  return server;
}

void RedisAffinityStore::refresh(std::string_view key, ServerId server, Duration ttl, TimePoint now) {
  // Decided here, from the local entry's expiry: a hit within the slack
  // costs what a memory store's refresh does (no copy, no queue, no post).
  std::string& sealed = sealed_buffer();
  core_->sealer.seal(key, sealed);
  if (!core_->local.extend(sealed, server, ttl, now, refresh_slack(ttl))) return;
  Core::Op op;
  op.kind = Core::Op::Kind::kRefresh;
  op.key.assign(sealed);
  op.server = server;
  op.ttl = ttl;
  op.now = now;
  core_->enqueue(std::move(op));
}

void RedisAffinityStore::erase(std::string_view key) {
  Core::Op op;
  op.kind = Core::Op::Kind::kErase;
  core_->sealer.seal(key, op.key);
  core_->local.erase(op.key);
  core_->enqueue(std::move(op));
}

void RedisAffinityStore::update_servers(std::vector<BackendServers> servers) {
  boost::asio::post(core_->client.io(), [core = core_, s = std::move(servers)]() mutable {
    core->set_servers(std::move(s));
  });
}

bool RedisAffinityStore::warm_up(std::chrono::milliseconds limit) {
  std::unique_lock lock(core_->w_mu);
  return core_->w_cv.wait_for(lock, limit, [this] { return core_->warmed.load(); });
}

bool RedisAffinityStore::flush(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    bool queued;
    {
      std::lock_guard lock(core_->q_mu);
      queued = !core_->queue.empty() || core_->wake_posted;
    }
    if (!queued && core_->idle.load(std::memory_order_acquire)) return true;
    if (std::chrono::steady_clock::now() >= deadline || !core_->client.connected()) return false;
    std::this_thread::sleep_for(5ms);
  }
}

RedisAffinityStore::Stats RedisAffinityStore::stats() const {
  Stats s;
  s.errors = core_->errors.load(std::memory_order_relaxed);
  s.dropped = core_->dropped.load(std::memory_order_relaxed);
  s.written = core_->written_count.load(std::memory_order_relaxed);
  s.refreshes = core_->refreshes.load(std::memory_order_relaxed);
  s.applied = core_->applied.load(std::memory_order_relaxed);
  s.ignored = core_->ignored.load(std::memory_order_relaxed);
  s.loaded = core_->loaded.load(std::memory_order_relaxed);
  s.refilled = core_->refilled.load(std::memory_order_relaxed);
  s.flushes = core_->flushes.load(std::memory_order_relaxed);
  return s;
}

size_t RedisAffinityStore::local_size() const { return core_->local.size(); }

std::string RedisAffinityStore::redis_key(std::string_view key) const {
  return RedisKeyCodec::encode(core_->opt.key_prefix, core_->sealer.seal(key));
}

}  // namespace sag::affinity
