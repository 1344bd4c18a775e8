#include "affinity/store/redis_store_core.h"
#include "affinity/store/redis_store_scripts.h"

#include <unistd.h>

#include <algorithm>

#include <boost/asio/post.hpp>

#include "affinity/store/redis_replication_message.h"
#include "config/base/hex.h"
#include "config/base/random.h"

namespace sag::affinity {
namespace asio = boost::asio;
using namespace redis_scripts;  // NOLINT(google-build-using-namespace): the scripts are this file's

namespace {

// How far past the expiry Redis has a re-put one must be before it is
// written (refresh_slack(), as docs/behaviour.md#persistence refreshes cookie dates).
int64_t refresh_slack_ns(Duration ttl) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(refresh_slack(ttl)).count();
}

std::string random_origin() {
  const uint64_t v = base::random_u64();
  return base::hex_encode(std::string_view(reinterpret_cast<const char*>(&v), sizeof v));
}

std::string_view backend_of(std::string_view key) { return key.substr(0, key.find('\0')); }

}  // namespace

RedisAffinityStore::Core::Core(redis::RedisClient& c, std::vector<BackendServers> servers, Options o,
                               const Clock& clk, std::function<void()> err)
    : client(c),
      opt(std::move(o)),
      clock(clk),
      on_error(std::move(err)),
      sealer(opt.key_secret),
      local(opt.capacity),
      channel(opt.key_prefix + "affinity"),
      pattern(RedisKeyCodec::scan_pattern(opt.key_prefix)),
      origin(random_origin()),
      marker(opt.key_prefix + "replica:" + origin),
      marker_px(std::to_string(std::max<int64_t>(60000, 5 * opt.check_every.count()))),
      tick_timer(c.io()) {
  set_servers(std::move(servers));
  // Never rehashed while it holds at most `capacity` entries, so refill
  // can walk it bucket by bucket across callbacks.
  index.max_load_factor(1.0f);
  index.reserve(static_cast<size_t>(std::min<uint64_t>(opt.capacity, uint64_t{1} << 26)));
}

void RedisAffinityStore::Core::set_servers(std::vector<BackendServers> servers) {
  backends.clear();
  for (auto& b : servers) {
    Names& n = backends[b.backend];
    for (size_t i = 0; i < b.servers.size(); ++i)
      if (!b.servers[i].empty()) n.ids.emplace(b.servers[i], static_cast<ServerId>(i));
    n.names = std::move(b.servers);
  }
}

void RedisAffinityStore::Core::start() {
  auto self = shared_from_this();
  client.on_state([self](bool up) { self->on_state(up); });
  client.subscribe(channel, [self](std::string_view payload) { self->on_message(payload); });
  // The tick (sweep, marker, outage count) is the one timer of ours left
  // armed between operations: it ends with the client (none outlives the
  // client's io_context).
  client.on_stop([self] { self->tick_timer.cancel(); });
  asio::post(client.io(), [self] { self->arm_tick(); });
}

void RedisAffinityStore::Core::log(bool error, const std::string& line) const {
  if (opt.log) opt.log(error, line);
}

void RedisAffinityStore::Core::count_error() {
  errors.fetch_add(1, std::memory_order_relaxed);
  if (on_error) on_error();
}

const RedisAffinityStore::Core::Names* RedisAffinityStore::Core::names_for(std::string_view key) const {
  auto it = backends.find(backend_of(key));
  return it == backends.end() ? nullptr : &it->second;
}

void RedisAffinityStore::Core::enqueue(Op&& op) {
  bool wake = false, drop = false;
  {
    std::lock_guard lock(q_mu);
    if (queue.size() >= opt.max_queue) {
      drop = true;
    } else {
      if (op.kind == Op::Kind::kRefresh) refreshes.fetch_add(1, std::memory_order_relaxed);
      queue.push_back(std::move(op));
      wake = !wake_posted;
      wake_posted = true;
      // Not idle until the client thread has taken this in (flush() must
      // not see an empty queue and a stale `idle` while it is applied).
      idle.store(false, std::memory_order_release);
    }
  }
  if (drop) {
    dropped.fetch_add(1, std::memory_order_relaxed);
    count_error();
  }
  if (wake) asio::post(client.io(), [self = shared_from_this()] { self->drain(); });
}

void RedisAffinityStore::Core::drain() {
  {
    std::lock_guard lock(q_mu);
    taken.swap(queue);
    wake_posted = false;
  }
  for (auto& op : taken) apply_local(op);
  taken.clear();
  pump();
}

void RedisAffinityStore::Core::make_room() {
  const int64_t now = to_ns(clock.steady_now());
  const size_t buckets = index.bucket_count();
  std::vector<std::string> victims;
  for (size_t step = 0; step < buckets && index.size() + 1 > opt.capacity; ++step) {
    const size_t b = sweep_bucket++ % buckets;
    victims.clear();
    for (auto it = index.begin(b); it != index.end(b); ++it)
      if (step >= 64 || (!it->second.dirty && it->second.expires <= now)) victims.push_back(it->first);
    for (const auto& k : victims) {
      auto it = index.find(k);
      if (it->second.dirty) {
        dropped.fetch_add(1, std::memory_order_relaxed);
        count_error();
      }
      index.erase(it);
      if (index.size() + 1 <= opt.capacity) break;
    }
  }
}

RedisAffinityStore::Core::Entry& RedisAffinityStore::Core::upsert(const std::string& key, bool& inserted) {
  auto it = index.find(key);
  if (it != index.end()) {
    inserted = false;
    return it->second;
  }
  if (opt.capacity > 0 && index.size() >= opt.capacity) make_room();
  inserted = true;
  return index.emplace(key, Entry{}).first->second;
}

void RedisAffinityStore::Core::apply_local(Op& op) {
  if (op.kind == Op::Kind::kRefresh) {
    apply_refresh(op);
    return;
  }
  const Names* n = names_for(op.key);
  if (!n) return;
  bool inserted = false;
  if (op.kind == Op::Kind::kErase) {
    local.erase(op.key);
    Entry& e = upsert(op.key, inserted);
    e.deleted = true;
    e.change = true;
    e.seq = ++seq;
    mark_dirty(op.key, e, true);
    return;
  }
  if (op.server >= n->names.size()) return;
  // Applied again here: an announcement from another replica may have
  // landed between the worker's put and this, and the write below makes
  // this one the latest in Redis, so it must be the local one too. A claim
  // such an announcement beat is dropped: the key has its owner.
  const bool claim = op.kind == Op::Kind::kClaim;
  if (claim) {
    if (local.claim(op.key, op.server, op.ttl, op.now) != op.server) return;
  } else {
    local.put(op.key, op.server, op.ttl, op.now);
  }
  const int64_t exp = expiry_ns(to_ns(op.now), op.ttl);
  Entry& e = upsert(op.key, inserted);
  const bool change = inserted || e.deleted || e.server != op.server;
  e.server = op.server;
  e.expires = exp;
  e.deleted = false;
  e.seq = ++seq;
  if (change) {
    e.change = true;
    e.claim = claim;
  }
  if (change || e.written == 0 || (e.written != kNoExpiry && exp - e.written >= refresh_slack_ns(op.ttl)))
    mark_dirty(op.key, e, true);
}

void RedisAffinityStore::Core::apply_refresh(const Op& op) {
  auto it = index.find(op.key);
  if (it == index.end()) {
    // Not tracked here (the index made room): tracked again while the
    // local copy still has it.
    const Names* n = names_for(op.key);
    if (!n || op.server >= n->names.size() || local.find(op.key, op.now) != op.server) return;
    bool inserted = false;
    Entry& e = upsert(op.key, inserted);
    e.server = op.server;
    e.expires = expiry_ns(to_ns(op.now), op.ttl);
    e.written = 0;
    e.seq = ++seq;
    mark_dirty(op.key, e, true);
    return;
  }
  Entry& e = it->second;
  if (e.deleted || e.server != op.server) return;
  e.expires = std::max(e.expires, expiry_ns(to_ns(op.now), op.ttl));
  e.seq = ++seq;
  mark_dirty(op.key, e, true);
}

void RedisAffinityStore::Core::mark_dirty(const std::string& key, Entry& e, bool fresh) {
  if (e.dirty) return;
  if (pending.size() >= opt.max_pending) {
    dropped.fetch_add(1, std::memory_order_relaxed);
    count_error();
    e.written = 0;  // not in Redis as far as we know: refill writes it
    return;
  }
  e.dirty = true;
  pending.push_back(key);
  if (fresh && !up) count_error();  // a change Redis does not get now
}

void RedisAffinityStore::Core::pump() {
  while (up && inflight < opt.max_inflight && !pending.empty()) {
    std::string key = std::move(pending.front());
    pending.pop_front();
    auto it = index.find(key);
    if (it == index.end() || !it->second.dirty) continue;
    send_write(it);
  }
  if (up && pending.empty() && refill_wanted && !scanning) pump_refill();
  update_idle();
}

void RedisAffinityStore::Core::send_write(std::unordered_map<std::string, Entry>::iterator it) {
  const std::string& key = it->first;
  Entry& e = it->second;
  e.dirty = false;
  const bool change = e.change;
  e.change = false;
  const bool deleted = e.deleted;
  const bool claim = change && e.claim;
  e.claim = false;
  const std::string rkey = RedisKeyCodec::encode(opt.key_prefix, key);
  std::vector<std::string> argv;
  if (deleted) {
    argv = {"EVAL", kDeleteScript, "1", rkey, channel,
            RedisReplicationMessage::format(RedisReplicationMessage::kDelete, origin, "0", rkey, {})};
  } else {
    const int64_t now = to_ns(clock.steady_now());
    if (e.expires != kNoExpiry && e.expires <= now) {
      index.erase(it);  // expired before it could be written: nothing to share
      return;
    }
    const Names* n = names_for(key);
    if (!n || e.server >= n->names.size()) return;
    const std::string& name = n->names[e.server];
    const std::string px =
        e.expires == kNoExpiry ? "0" : std::to_string(std::max<int64_t>(1, (e.expires - now + 999999) / 1000000));
    argv = {"EVAL", claim ? kClaimScript : change ? kSetScript : kRefreshScript, "1", rkey, name, px, channel,
            RedisReplicationMessage::format(change ? RedisReplicationMessage::kChange : RedisReplicationMessage::kRefresh,
                                            origin, px, rkey, name)};
    e.written = e.expires;
  }
  if (change) ++unechoed[key];
  ++inflight;
  client.command(std::move(argv), [self = shared_from_this(), key, change, deleted, claim](
                                      boost::system::error_code ec, const redis::RedisReply& reply) {
    self->on_written(key, change, deleted, ec, reply);
    if (claim && !ec && reply.type == redis::RedisReply::Type::kArray) self->on_claim_lost(key, reply);
  });
}

void RedisAffinityStore::Core::on_written(const std::string& key, bool change, bool deleted,
                                          boost::system::error_code ec, const redis::RedisReply& reply) {
  --inflight;
  const bool ok = !ec && !reply.is_error();
  auto it = index.find(key);
  if (ok) {
    written_count.fetch_add(1, std::memory_order_relaxed);
    if (deleted && it != index.end() && it->second.deleted && !it->second.dirty) index.erase(it);
  } else {
    count_error();
    if (change) forget_echo(key);
    if (it != index.end()) {
      it->second.written = 0;
      // Lost with the connection: written again when Redis is back (a
      // refused one, e.g. OOM, is not retried; refill may place it).
      if (ec) {
        if (change || it->second.deleted) it->second.change = true;
        mark_dirty(key, it->second, false);
      }
    }
  }
  pump();
}

void RedisAffinityStore::Core::on_claim_lost(const std::string& key, const redis::RedisReply& reply) {
  forget_echo(key);  // nothing was announced
  const auto& r = reply.elements;
  using Type = redis::RedisReply::Type;
  if (r.size() != 2 || r[0].type != Type::kString || r[1].type != Type::kInteger) return;
  const Names* n = names_for(key);
  const std::optional<ServerId> id = n ? n->find(r[0].str) : std::nullopt;
  if (!id) return void(ignored.fetch_add(1, std::memory_order_relaxed));
  const int64_t pttl = r[1].integer;  // -1: no expiry; 0 or below: gone meanwhile
  if (own_change_pending(key) || pttl == 0 || pttl < -1) return;
  applied.fetch_add(1, std::memory_order_relaxed);
  take_from_redis(key, *id, Duration(pttl < 0 ? 0 : pttl));
}

bool RedisAffinityStore::Core::own_change_pending(const std::string& key) const {
  if (unechoed.count(key)) return true;
  auto it = index.find(key);
  return it != index.end() && it->second.dirty && it->second.change;
}

void RedisAffinityStore::Core::take_from_redis(const std::string& key, ServerId id, Duration ttl) {
  const TimePoint now = clock.steady_now();
  local.put(key, id, ttl, now);
  bool inserted = false;
  Entry& e = upsert(key, inserted);
  e.server = id;
  e.expires = expiry_ns(to_ns(now), ttl);
  e.written = e.expires;
  e.deleted = false;
  e.seq = ++seq;
}

void RedisAffinityStore::Core::forget_echo(const std::string& key) {
  auto it = unechoed.find(key);
  if (it != unechoed.end() && --it->second == 0) unechoed.erase(it);
}

void RedisAffinityStore::Core::on_message(std::string_view payload) {
  drain();  // changes made here before this arrived are ordered before it
  const auto m = RedisReplicationMessage::parse(payload);
  if (!m) return;
  const char op = m->op;
  const std::string_view from = m->origin, rkey = m->redis_key, name = m->server;
  auto key = RedisKeyCodec::decode(opt.key_prefix, rkey);
  if (!key) return;
  key = sealer.accept(std::move(*key));  // an older replica's raw key: sealed here
  if (!key) {
    ignored.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (from == origin) {
    if (op != RedisReplicationMessage::kRefresh) forget_echo(*key);
    return;
  }
  const Names* n = names_for(*key);
  std::optional<ServerId> id;
  if (n) id = op == RedisReplicationMessage::kDelete ? std::optional<ServerId>(0) : n->find(name);
  if (!id) {
    ignored.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Our own change of this key is on its way and Redis ordered it after
  // this one: it wins everywhere, so this one is skipped here.
  if (own_change_pending(*key)) return;
  applied.fetch_add(1, std::memory_order_relaxed);
  if (op == RedisReplicationMessage::kDelete) {
    local.erase(*key);
    index.erase(*key);
    return;
  }
  if (const auto px = RedisReplicationMessage::parse_px(m->px)) take_from_redis(*key, *id, Duration(*px));
}

void RedisAffinityStore::Core::on_state(bool now_up) {
  ++epoch;
  scanning = false;
  marking = false;
  marked = false;
  if (!now_up) {
    up = false;
    count_error();  // the outage itself, besides each change it holds up
    unechoed.clear();  // echoes of writes in flight are lost with the connection
    update_idle();
    return;
  }
  up = true;
  // After an outage Redis may lack what was written before it (a restart
  // with no persistence): every live entry is written back with NX.
  refill_wanted = ever_up;
  refill_bucket = 0;
  ever_up = true;
  mark(false);  // first, so that a flush from here on is seen by the next check
  drain();  // also sends the changes queued during the outage
  start_scan();
}

void RedisAffinityStore::Core::mark(bool check) {
  marking = true;
  client.command({"EVAL", kMarkScript, "1", marker, marker_px},
                 [self = shared_from_this(), ep = epoch, check](boost::system::error_code ec,
                                                                const redis::RedisReply& r) {
                   if (ep != self->epoch) return;  // the next connection marks anew
                   self->marking = false;
                   if (ec || r.type != redis::RedisReply::Type::kInteger) {
                     // Not set: the next one only sets it. A lost
                     // connection is counted as such; a refusal (e.g.
                     // OOM) here.
                     self->marked = false;
                     if (!ec) self->count_error();
                     return;
                   }
                   const bool was_marked = self->marked;
                   self->marked = true;
                   if (check && was_marked && r.integer == 0) self->on_flushed();
                 });
}

void RedisAffinityStore::Core::on_flushed() {
  flushes.fetch_add(1, std::memory_order_relaxed);
  count_error();
  log(true, "redis: the affinity entries are gone from Redis (FLUSHALL, FLUSHDB or an empty server); "
            "writing back the " + std::to_string(index.size()) + " held here");
  refill_wanted = true;
  refill_bucket = 0;
  pump();
}

void RedisAffinityStore::Core::start_scan() {
  scanning = true;
  scan_loaded = 0;
  scan_step("0");
}

void RedisAffinityStore::Core::scan_step(const std::string& cursor) {
  client.command({"SCAN", cursor, "MATCH", pattern, "COUNT", std::to_string(opt.scan_count)},
                 [self = shared_from_this(), ep = epoch](boost::system::error_code ec, const redis::RedisReply& r) {
                   if (ep != self->epoch) return;
                   if (ec || r.type != redis::RedisReply::Type::kArray || r.elements.size() != 2 ||
                       r.elements[1].type != redis::RedisReply::Type::kArray) {
                     self->count_error();
                     self->scan_done(false);  // the next connection scans again
                     return;
                   }
                   std::string next = r.elements[0].str;
                   std::vector<std::string> keys;
                   for (const auto& k : r.elements[1].elements)
                     if (k.type == redis::RedisReply::Type::kString) keys.push_back(k.str);
                   if (keys.empty()) {
                     self->scan_next(next);
                     return;
                   }
                   std::vector<std::string> argv{"EVAL", kLoadScript, std::to_string(keys.size())};
                   argv.insert(argv.end(), keys.begin(), keys.end());
                   const uint64_t seq_at = self->seq;
                   self->client.command(std::move(argv), [self, ep, keys = std::move(keys), next, seq_at](
                                                              boost::system::error_code ec2, const redis::RedisReply& r2) {
                     if (ep != self->epoch) return;
                     if (ec2 || r2.type != redis::RedisReply::Type::kArray || r2.elements.size() != 2 * keys.size()) {
                       self->count_error();
                       self->scan_done(false);
                       return;
                     }
                     self->load(keys, r2, seq_at);
                     self->scan_next(next);
                   });
                 });
}

void RedisAffinityStore::Core::scan_next(const std::string& cursor) {
  if (cursor == "0" || scan_loaded >= opt.capacity) {
    scan_done(true);
  } else {
    scan_step(cursor);
  }
}

void RedisAffinityStore::Core::scan_done(bool complete) {
  scanning = false;
  if (complete && !warmed.load()) {
    {
      std::lock_guard lock(w_mu);
      warmed.store(true);
    }
    w_cv.notify_all();
  }
  pump();
}

void RedisAffinityStore::Core::load(const std::vector<std::string>& keys, const redis::RedisReply& r, uint64_t seq_at) {
  const TimePoint now = clock.steady_now();
  const int64_t now_ns = to_ns(now);
  for (size_t i = 0; i < keys.size(); ++i) {
    const redis::RedisReply& value = r.elements[2 * i];
    const redis::RedisReply& pttl = r.elements[2 * i + 1];
    if (value.type != redis::RedisReply::Type::kString || pttl.type != redis::RedisReply::Type::kInteger) continue;
    if (pttl.integer == -2 || pttl.integer == 0) continue;  // gone meanwhile
    auto key = RedisKeyCodec::decode(opt.key_prefix, keys[i]);
    if (key) key = sealer.accept(std::move(*key));  // an older version's raw key: sealed here
    const Names* n = key ? names_for(*key) : nullptr;
    const std::optional<ServerId> found = n ? n->find(value.str) : std::nullopt;
    if (!found) {
      ignored.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const ServerId id = *found;
    const Duration ttl(pttl.integer < 0 ? 0 : pttl.integer);
    const int64_t exp = expiry_ns(now_ns, ttl);
    auto it = index.find(*key);
    if (it != index.end()) {
      Entry& e = it->second;
      if (e.seq > seq_at || e.dirty || unechoed.count(*key)) continue;
      if (!e.deleted && e.server == id) {
        e.written = exp;
        if (exp <= e.expires) continue;
      }
    }
    local.put(*key, id, ttl, now);
    bool inserted = false;
    Entry& e = upsert(*key, inserted);
    e.server = id;
    e.expires = exp;
    e.written = exp;
    e.deleted = false;
    e.seq = ++seq;
    ++scan_loaded;
    loaded.fetch_add(1, std::memory_order_relaxed);
  }
}

void RedisAffinityStore::Core::pump_refill() {
  const int64_t now = to_ns(clock.steady_now());
  const size_t buckets = index.bucket_count();
  while (inflight < opt.max_inflight && refill_bucket < buckets) {
    for (auto it = index.begin(refill_bucket); it != index.end(refill_bucket); ++it) {
      const Entry& e = it->second;
      if (e.dirty || e.deleted || (e.expires != kNoExpiry && e.expires <= now)) continue;
      const Names* n = names_for(it->first);
      if (!n || e.server >= n->names.size()) continue;
      std::vector<std::string> argv{"SET", RedisKeyCodec::encode(opt.key_prefix, it->first), n->names[e.server]};
      if (e.expires != kNoExpiry) {
        argv.push_back("PX");
        argv.push_back(std::to_string(std::max<int64_t>(1, (e.expires - now) / 1000000)));
      }
      argv.push_back("NX");
      ++inflight;
      client.command(std::move(argv), [self = shared_from_this()](boost::system::error_code ec,
                                                                   const redis::RedisReply& reply) {
        --self->inflight;
        if (ec || reply.is_error()) {
          self->count_error();
        } else if (reply.type == redis::RedisReply::Type::kStatus) {
          self->refilled.fetch_add(1, std::memory_order_relaxed);  // NX: it was missing
        }
        self->pump();
      });
    }
    ++refill_bucket;
  }
  if (refill_bucket >= buckets) refill_wanted = false;
}

void RedisAffinityStore::Core::arm_tick() {
  tick_timer.expires_after(opt.check_every);
  tick_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (!self->up) {
      self->count_error();
    } else if (!self->marking) {
      self->mark(self->marked);
    }
    self->sweep();
    self->arm_tick();
  });
}

void RedisAffinityStore::Core::sweep() {
  const int64_t now = to_ns(clock.steady_now());
  const size_t buckets = index.bucket_count();
  const size_t n = std::max<size_t>(1024, buckets / 60);
  std::vector<std::string> victims;
  for (size_t k = 0; k < n && k < buckets; ++k) {
    const size_t b = sweep_bucket++ % buckets;
    for (auto it = index.begin(b); it != index.end(b); ++it)
      if (!it->second.dirty && it->second.expires <= now) victims.push_back(it->first);
  }
  for (const auto& v : victims) index.erase(v);
}

}  // namespace sag::affinity
