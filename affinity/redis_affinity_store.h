// The AffinityStore shared by replicas through Redis (`affinity_store.type:
// redis`, SPEC §4): a local MemoryAffinityStore answers every find() (never
// waiting on Redis), and a RedisClient keeps it in step with the other
// replicas in the background.
//
// - put()/erase() apply to the local copy at once and are queued (bounded:
//   `max_queue`, drops counted) for the client thread, which writes them to
//   Redis with their TTL and announces them on the channel
//   `<key_prefix>affinity`, in one script so that the announcements come in
//   the order Redis applied the writes. Every replica applies the others'
//   announcements to its local copy (within milliseconds: one pub/sub hop)
//   and ignores its own.
// - Servers travel by NAME (the value of the Redis key, and in messages):
//   ServerId is an index in the local config, which may list servers in
//   another order elsewhere. Names a replica does not know, or backends it
//   does not have, are ignored.
// - Redis keys: `<key_prefix>a:<backend>:<kind>:<value>`, each part of the
//   affinity key ("<backend>\0<kind>\0<value>") percent-encoded (every byte
//   outside [A-Za-z0-9._~!$&'()+,;=@/-] becomes %XX), so keys are printable
//   and unambiguous, and nothing outside `a:` is touched (SharedState uses
//   the same prefix).
// - TTL refreshes (refresh(), on every learn or source hit) are decided on
//   the worker from the local entry's expiry: within refresh_slack(ttl) =
//   min(ttl/4, 60 s) of the new one nothing happens (the cost of a memory
//   store's refresh); past it the local expiry moves and the refresh is
//   queued, so one per entry per minute at most reaches Redis, and
//   replicas' expiries stay within that of each other. A refresh never
//   overrides a change made elsewhere: it is dropped when the local copy
//   names another server by then, and Redis runs it as a script that sets
//   the key only while it still names the same server (or is gone). A put()
//   that names the entry's server again is throttled the same way on the
//   client thread.
// - Concurrent changes of one key on two replicas converge on the one Redis
//   applied last: a replica ignores others' announcements for a key while
//   its own change of that key is not yet announced back to it.
// - Start-up (warm_up) and every reconnection: SCAN the keys under the
//   prefix (COUNT `scan_count`, at most `capacity` entries, within the
//   time given to warm_up), loading those the local copy lacks with their
//   remaining TTL (PTTL).
// - Outage (Redis refused, slow or gone): requests go on with the local
//   copy; the loss and each change that cannot be written count as errors; the
//   pending writes (bounded: `max_pending`, drops counted) go out when Redis
//   returns, and then every live local entry is written back with SET NX
//   (so a Redis restarted empty is refilled; `max_inflight` commands at a
//   time).
//
// Threads: find/put/refresh/erase from any worker thread at once; find()
// and a refresh within the slack are the MemoryAffinityStore's (sharded
// mutexes); put/erase and a due refresh add one short mutex hold to queue
// the change. Everything else runs on the client thread. The store
// registers callbacks with the client: build it before client.start(); the
// state the callbacks use is shared with them, so the store object may go
// before the client does. Its timer ends when the client stops.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "affinity/affinity_store.h"
#include "affinity/backend.h"
#include "affinity/clock.h"
#include "affinity/redis_client.h"

namespace sag::affinity {

class RedisAffinityStore final : public AffinityStore {
 public:
  // One backend's server names by ServerId.
  struct BackendServers {
    std::string backend;
    std::vector<std::string> servers;
  };
  static std::vector<BackendServers> server_names(const BackendSet& backends);

  struct Options {
    uint64_t capacity = 1000000;  // local entries, and the most a SCAN loads
    std::string key_prefix = "gw:";
    size_t max_queue = 65536;     // changes handed over but not yet taken by the client thread
    size_t max_pending = 100000;  // changes waiting for Redis (outage)
    size_t max_inflight = 1000;   // writes sent and not yet answered
    uint32_t scan_count = 1000;   // SCAN COUNT
  };
  // Counters, read from any thread.
  struct Stats {
    uint64_t errors = 0;        // connection losses + changes not written (outage or failure) + drops
    uint64_t dropped = 0;       // changes dropped from a full queue
    uint64_t written = 0;       // writes Redis acknowledged
    uint64_t refreshes = 0;     // due TTL refreshes queued for Redis
    uint64_t applied = 0;       // others' announcements applied locally
    uint64_t ignored = 0;       // announcements / keys with unknown backend or server
    uint64_t loaded = 0;        // entries loaded by SCAN
    uint64_t refilled = 0;      // entries written back by SET NX that Redis lacked
  };

  // `client` must outlive every use of the store (and is not started yet,
  // preferably). `on_error` (may be empty) is called on the thread that
  // noticed, once per error counted; `clock` gives the client thread's now.
  RedisAffinityStore(RedisClient& client, std::vector<BackendServers> servers, Options options,
                     const Clock& clock, std::function<void()> on_error = {});
  ~RedisAffinityStore() override;
  RedisAffinityStore(const RedisAffinityStore&) = delete;
  RedisAffinityStore& operator=(const RedisAffinityStore&) = delete;

  std::optional<ServerId> find(std::string_view key, TimePoint now) override;
  void put(std::string_view key, ServerId server, Duration ttl, TimePoint now) override;
  void refresh(std::string_view key, ServerId server, Duration ttl, TimePoint now) override;
  void erase(std::string_view key) override;

  // Blocks (not on the client thread) until the first SCAN after start-up
  // has loaded what Redis holds, or `limit` passed (Redis down or slow: the
  // store keeps trying in the background). True when the load completed.
  bool warm_up(std::chrono::milliseconds limit);
  // Blocks until the changes made so far are written (or given up, Redis
  // down), at most `limit`. True when nothing is left to write.
  bool flush(std::chrono::milliseconds limit);

  Stats stats() const;
  size_t local_size() const;

  // The Redis key for an affinity key, and back (nullopt: not one of ours).
  static std::string encode_key(std::string_view prefix, std::string_view key);
  static std::optional<std::string> decode_key(std::string_view prefix, std::string_view redis_key);

 private:
  struct Core;
  std::shared_ptr<Core> core_;
};

}  // namespace sag::affinity
