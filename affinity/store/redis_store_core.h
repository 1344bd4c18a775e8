// RedisAffinityStore's state and its work on the client thread (see
// redis_affinity_store.h for the behaviour): the local copy, the index of
// what Redis holds as far as this replica knows, the queue from the
// workers, the writes and their announcements, the SCAN at (re)connection,
// the refill and the marker. Shared (shared_ptr) with the callbacks it
// registers with the client, so the store object may go before the client.
//
// Threads: enqueue() and the members marked so from any thread; everything
// else on the client thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "affinity/store/memory_affinity_store.h"
#include "affinity/store/redis_affinity_store.h"
#include "affinity/store/redis_key_codec.h"

namespace sag::affinity {

struct RedisAffinityStore::Core : std::enable_shared_from_this<Core> {
  // Heterogeneous lookup: names are looked up by string_view, without a copy.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Op {
    enum class Kind : uint8_t {
      kPut,      // a new or changed entry (or the same again): put()
      kClaim,    // a new entry unless Redis has one: claim()
      kRefresh,  // a hit whose TTL extension is due: refresh()
      kErase,
    };
    Kind kind = Kind::kPut;
    std::string key;
    ServerId server = 0;
    Duration ttl{0};
    TimePoint now{};
  };
  // What the client thread knows of one key (the local copy itself holds no
  // keys: MemoryAffinityStore keeps fingerprints only).
  struct Entry {
    int64_t expires = 0;  // local expiry, steady ns (kNoExpiry: none)
    int64_t written = 0;  // expiry Redis has as far as we know (0: unknown)
    uint64_t seq = 0;     // when last touched (Core::seq)
    ServerId server = 0;
    bool dirty = false;    // a write is queued in `pending`
    bool change = false;   // ... and it changes the server (not a refresh)
    bool deleted = false;  // tombstone: the queued write deletes
    bool claim = false;    // the queued change is a claim (only if Redis has none)
  };
  struct Names {
    std::vector<std::string> names;
    std::unordered_map<std::string, ServerId, StringHash, std::equal_to<>> ids;
    std::optional<ServerId> find(std::string_view name) const {
      auto it = ids.find(name);
      return it == ids.end() ? std::nullopt : std::optional<ServerId>(it->second);
    }
  };

  Core(redis::RedisClient& c, std::vector<BackendServers> servers, Options o, const Clock& clk,
       std::function<void()> err);
  void start();
  // Client thread (or before start()): server names by id from now on.
  void set_servers(std::vector<BackendServers> servers);
  void log(bool error, const std::string& line) const;
  void count_error();
  const Names* names_for(std::string_view key) const;

  // ----------------------------------------------------------- any thread
  void enqueue(Op&& op);

  // -------------------------------------------------------- client thread
  void drain();

  // Room for one more key in the index: expired entries near the sweep
  // cursor go first, then whatever the cursor meets (its queued write, if
  // any, is dropped: refill restores the Redis copy of a live entry).
  void make_room();
  Entry& upsert(const std::string& key, bool& inserted);
  void apply_local(Op& op);

  // A hit's TTL extension, already applied to the local copy by the worker
  // (which found it due). Written with the conditional script only, and only
  // while this replica still has the entry naming op.server: an
  // announcement applied since (another replica's change or erase) wins.
  void apply_refresh(const Op& op);
  void mark_dirty(const std::string& key, Entry& e, bool fresh);

  // Pending changes first (they are the newest), then the refill.
  void pump();
  void update_idle() { idle.store(pending.empty() && inflight == 0, std::memory_order_release); }

  void send_write(std::unordered_map<std::string, Entry>::iterator it);
  void on_written(const std::string& key, bool change, bool deleted, boost::system::error_code ec,
                  const redis::RedisReply& reply);
  // A claim Redis refused: `reply` is the winner's {name, PTTL}, taken into
  // the local copy unless a newer change of ours is on its way.
  void on_claim_lost(const std::string& key, const redis::RedisReply& reply);
  // A change of `key` made here is queued or not yet announced back: it
  // wins over what Redis or another replica says of the key meanwhile.
  bool own_change_pending(const std::string& key) const;
  // Redis's entry for `key` (another replica's) into the local copy, as
  // written there: it expires `ttl` from now (0: never).
  void take_from_redis(const std::string& key, ServerId id, Duration ttl);
  void forget_echo(const std::string& key);

  // Another replica's announcement (redis_replication_message.h).
  void on_message(std::string_view payload);
  void on_state(bool now_up);

  // --------------------------------------------------------------- marker
  // Sets this replica's marker; with `check`, a marker found gone means
  // Redis was emptied since the last one: refilled as after a restart.
  void mark(bool check);
  void on_flushed();

  // ----------------------------------------------------------------- scan
  void start_scan();
  void scan_step(const std::string& cursor);
  void scan_next(const std::string& cursor);
  void scan_done(bool complete);

  // Entries the local copy lacks, or has with the same server but an
  // earlier expiry, are taken from Redis. Skipped: keys touched since the
  // load was asked for (newer than what it read) and keys with a change of
  // ours not yet written or announced.
  void load(const std::vector<std::string>& keys, const redis::RedisReply& r, uint64_t seq_at);

  // --------------------------------------------------------------- refill
  void pump_refill();

  // ----------------------------------------------------------------- tick
  // Every check_every: the marker is checked (up), or the outage counted
  // (down: from start-up on too, so a Redis never reached shows), and a
  // slice of the index swept.
  void arm_tick();

  // Drops expired index entries, a slice of the buckets a tick (the whole
  // index about once a minute at one tick a second).
  void sweep();
  redis::RedisClient& client;
  const Options opt;
  const Clock& clock;
  const std::function<void()> on_error;
  const RedisKeyCodec sealer;
  MemoryAffinityStore local;
  const std::string channel;
  const std::string pattern;
  const std::string origin;
  const std::string marker;
  const std::string marker_px;
  std::unordered_map<std::string, Names, StringHash, std::equal_to<>> backends;
  std::mutex q_mu;
  std::vector<Op> queue;  // under q_mu
  bool wake_posted = false;  // under q_mu

  std::atomic<uint64_t> errors{0}, dropped{0}, written_count{0}, refreshes{0}, applied{0}, ignored{0},
      loaded{0}, refilled{0}, flushes{0};
  std::atomic<bool> idle{true};
  std::mutex w_mu;
  std::condition_variable w_cv;
  std::atomic<bool> warmed{false};

  // Client thread only.
  std::vector<Op> taken;
  std::unordered_map<std::string, Entry> index;
  std::deque<std::string> pending;
  std::unordered_map<std::string, uint32_t> unechoed;
  size_t inflight = 0;
  uint64_t seq = 0;
  uint64_t epoch = 0;
  bool up = false;
  bool ever_up = false;
  bool scanning = false;
  uint64_t scan_loaded = 0;
  bool refill_wanted = false;
  size_t refill_bucket = 0;
  bool marking = false;  // a marker command is out
  bool marked = false;   // this connection set the marker (so its absence means a flush)
  size_t sweep_bucket = 0;
  boost::asio::steady_timer tick_timer;
};

}  // namespace sag::affinity
