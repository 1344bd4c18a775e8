// The AffinityStore shared by replicas through Redis (`affinity_store.type:
// redis`, docs/behaviour.md#persistence): a local MemoryAffinityStore answers every find() (never
// waiting on Redis), and a redis::RedisClient keeps it in step with the other
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
// - Keys are sealed at the entry points (find/put/refresh/erase), so no
//   learned session id or client address ever leaves the process, and none
//   is kept in it either (docs/behaviour.md#persistence): a key "<backend>\0<KIND>\0<value>"
//   whose kind is an upper-case letter (L learn, S source) becomes
//   "<backend>\0<kind>\0<digest>", the kind in lower case (the mark of a
//   sealed key) and the digest 32 lower-case hex digits: SipHash-2-4-128
//   of the whole raw key (so one value in two backends or kinds gives
//   unrelated digests) under a 128-bit key, the first half of
//   HMAC-SHA256(secret, "sag affinity-store key v1"). The secret is
//   Options::key_secret (the gateway's `redis.key_secret_file`, else a
//   cookie secret; empty: a built-in one, which hides only from someone
//   who doesn't know the code: a client address is then found by trying
//   them all). Replicas with the same secret compute the same keys. The
//   local copy, the Redis keys, the announcements and the SCAN all carry
//   sealed keys. Raw keys found in Redis or in announcements (an older
//   version's, during a rolling upgrade) are sealed as they are read, so
//   those sessions are kept; they are never written back raw.
//   A sealed value cannot be read back: a lost digest is a lost session
//   only, and a collision (2^-128 per pair) sends a request to another
//   session's server, as in the memory store.
// - Redis keys: `<key_prefix>a:<backend>:<kind>:<value>`, each part of the
//   sealed key percent-encoded (every byte outside
//   [A-Za-z0-9._~!$&'()+,;=@/-] becomes %XX), so keys are printable and
//   unambiguous, and nothing outside `a:` is touched (SharedAdminState and
//   TicketKeyShare use the same prefix), except the replica's marker below.
//   Codec: redis_key_codec.h; announcements: redis_replication_message.h.
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
// - A Redis emptied under a live connection (FLUSHALL / FLUSHDB, a failover
//   to an empty server behind the same address) is noticed by the marker
//   `<key_prefix>replica:<origin>` (one per replica, `origin` its random id;
//   PX max(60 s, 5 checks)): every `check_every` one script reads and sets
//   it again, and when it was gone the same refill runs (the first set of
//   each connection checks nothing: the reconnection refills anyway). So a
//   flush is refilled within `check_every` plus the refill's own time.
// - Errors counted: each connection loss, each change that cannot be
//   written then (outage, failure, drop), each detected flush, and every
//   `check_every` tick while Redis is unreachable, from start-up on (so a
//   Redis never reached counts too; about one per connection attempt, which
//   the client backs off to one a second).
//
// Threads: find/put/refresh/erase from any worker thread at once; find()
// and a refresh within the slack are the MemoryAffinityStore's (sharded
// mutexes); put/erase and a due refresh add one short mutex hold to queue
// the change. Everything else runs on the client thread. The store
// registers callbacks with the client: build it before client.start(); the
// state the callbacks use is shared with them, so the store object may go
// before the client does. Its timer ends when the client stops. find()
// seals into a thread_local buffer: no allocation on the request path.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "affinity/store/affinity_store.h"
#include "affinity/model/backend.h"
#include "affinity/clock.h"
#include "affinity/store/redis_key_codec.h"
#include "config/redis/redis_client.h"

namespace sag::affinity {

class RedisAffinityStore final : public AffinityStore {
 public:
  using BackendServers = ServerNames;  // (BackendSet::server_names())

  struct Options {
    uint64_t capacity = 1000000;  // local entries, and the most a SCAN loads
    std::string key_prefix = "gw:";
    size_t max_queue = 65536;     // changes handed over but not yet taken by the client thread
    size_t max_pending = 100000;  // changes waiting for Redis (outage)
    size_t max_inflight = 1000;   // writes sent and not yet answered
    uint32_t scan_count = 1000;   // SCAN COUNT
    // The secret keys are sealed under (see above); empty: the built-in one.
    std::string key_secret;
    // How often the marker is checked (a flush noticed) and an outage counted.
    std::chrono::milliseconds check_every{1000};
    // Warnings (error = true) and notes of the store's own, e.g. a flush
    // noticed; may be empty.
    redis::RedisClient::LogSink log;
  };
  // Counters, read from any thread.
  struct Stats {
    uint64_t errors = 0;        // see "Errors counted" above
    uint64_t dropped = 0;       // changes dropped from a full queue
    uint64_t written = 0;       // writes Redis acknowledged
    uint64_t refreshes = 0;     // due TTL refreshes queued for Redis
    uint64_t applied = 0;       // others' announcements applied locally
    uint64_t ignored = 0;       // announcements / keys with unknown backend or server
    uint64_t loaded = 0;        // entries loaded by SCAN
    uint64_t refilled = 0;      // entries written back by SET NX that Redis lacked
    uint64_t flushes = 0;       // Redis found emptied under a live connection (marker gone)
  };

  // Seals affinity keys (see above); redis_key_codec.h.
  using KeySealer = RedisKeyCodec;

  // `client` must outlive every use of the store (and is not started yet,
  // preferably). `on_error` (may be empty) is called on the thread that
  // noticed, once per error counted; `clock` gives the client thread's now.
  RedisAffinityStore(redis::RedisClient& client, std::vector<BackendServers> servers, Options options,
                     const Clock& clock, std::function<void()> on_error = {});
  ~RedisAffinityStore() override;
  RedisAffinityStore(const RedisAffinityStore&) = delete;
  RedisAffinityStore& operator=(const RedisAffinityStore&) = delete;

  std::optional<ServerId> find(std::string_view key, TimePoint now) override;
  void put(std::string_view key, ServerId server, Duration ttl, TimePoint now) override;
  // Local first (atomic within the process), then written with SET NX
  // semantics: when another replica's entry got to Redis first, this
  // replica adopts it within one round trip (later connections follow it;
  // the one that claimed keeps the server it already has).
  ServerId claim(std::string_view key, ServerId server, Duration ttl, TimePoint now) override;
  void refresh(std::string_view key, ServerId server, Duration ttl, TimePoint now) override;
  void erase(std::string_view key) override;

  // Blocks (not on the client thread) until the first SCAN after start-up
  // has loaded what Redis holds, or `limit` passed (Redis down or slow: the
  // store keeps trying in the background). True when the load completed.
  bool warm_up(std::chrono::milliseconds limit);
  // A reload: server names by id (BackendSet::server_names()) from now on.
  // Thread-safe (applied on the client's thread).
  void update_servers(std::vector<BackendServers> servers);
  // Blocks until the changes made so far are written (or given up, Redis
  // down), at most `limit`. True when nothing is left to write.
  bool flush(std::chrono::milliseconds limit);

  Stats stats() const;
  size_t local_size() const;

  // The Redis key this store uses for an affinity key (sealed, encoded).
  std::string redis_key(std::string_view key) const;
  // The Redis key for a (sealed) affinity key, and back (nullopt: not one of
  // ours). Encoding only: no sealing.
  static std::string encode_key(std::string_view prefix, std::string_view key) {
    return RedisKeyCodec::encode(prefix, key);
  }
  static std::optional<std::string> decode_key(std::string_view prefix, std::string_view redis_key) {
    return RedisKeyCodec::decode(prefix, redis_key);
  }

 private:
  struct Core;
  std::shared_ptr<Core> core_;
};

}  // namespace sag::affinity
