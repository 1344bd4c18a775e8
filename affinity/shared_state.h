// State that replicas share through Redis besides affinity entries: the
// admin state of each server (ready/drain/maint, weight) and the TLS session
// ticket keys. Used with `affinity_store.type: redis` only; a single gateway
// keeps both locally and never builds this.
//
// Admin state
//   A change made through one replica's admin API (server_changed()) is
//   written to the HASH  PREFIX "admin:" BACKEND ":" SERVER  {state, weight}
//   and announced on the channel PREFIX "admin" (payload
//   "BACKEND\nSERVER"). Every replica, the writer included, then re-reads
//   that hash and applies it to its Server atomics, so concurrent writers
//   converge on what Redis holds. A read sent before a local change is not
//   applied after it. All admin keys of the local config are
//   read when Redis (re)connects and every `poll_interval`, so a missed
//   message never leaves replicas disagreeing for long. Only servers of the
//   local config are read or applied. A change made while Redis is away is
//   written when it returns, before anything is read back.
//
// Ticket keys
//   Time is cut into epochs of `ticket_period` (Unix time / period, the same
//   on every replica). Epoch E's key lives at PREFIX "tls:ticket:" E, created
//   by whichever replica's SET NX lands first (so replicas starting at once
//   agree) with a TTL of four periods, and announced on PREFIX "tls". A
//   replica encrypts with epoch E's key and decrypts with E-1's, E+1's
//   (made a period early, so clock skew at the boundary costs nothing) and
//   the key it encrypted with before; it switches at the boundary by its own
//   clock, and re-reads at (re)connect, on announcements and every
//   `poll_interval`. A restarted replica finds E-1 and E in Redis and
//   resumes old sessions. Without Redis it keeps the keys it has; at start
//   with Redis down it uses a local random key and adopts Redis's when it
//   returns (the local key still decrypts for a period). Values are "v1:"
//   and the 80-byte key in hex: name (16), AES-256 key (32), HMAC key (32),
//   the layout of tls::TicketKey. Keys this replica knows are written back
//   (SET NX) when Redis lost them.
//
// Threads: everything runs on the RedisClient's thread except the
// constructor, start(), wait_loaded(), loaded() and server_changed()
// (thread-safe, e.g. from the admin thread).
//
// Lifetime: build it before the client starts (its subscriptions and
// state callback must exist when the client first comes up, or changes
// announced in between wait for the next poll). Its timers end when the
// client stops; destroy it only once the client is stopped (thread joined)
// or if the client never starts: the client keeps callbacks into it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "affinity/backend.h"
#include "affinity/redis_client.h"

namespace sag::affinity {

class SharedState {
 public:
  // Size of one ticket key handed to the TicketSink (tls::TicketKey::kBytes).
  static constexpr size_t kTicketKeyBytes = 80;

  // `current` encrypts new tickets, each of `decrypt_only` still decrypts;
  // every string is kTicketKeyBytes long. Called from start() (the local
  // key) and then on the Redis client thread, only when the set changes.
  using TicketSink =
      std::function<void(const std::string& current, const std::vector<std::string>& decrypt_only)>;
  using LogSink = RedisClient::LogSink;

  struct Options {
    std::string key_prefix = "gw:";
    std::chrono::milliseconds ticket_period = std::chrono::hours(12);
    // Re-read of every admin key and of the ticket epochs (a safety net
    // under the announcements).
    std::chrono::milliseconds poll_interval = std::chrono::seconds(60);
    // False: no ticket keys are handled (no TLS listener uses tickets).
    bool tickets = true;
  };

  // Registers with `redis` (call before redis.start(); see Lifetime). The
  // RedisClient and BackendSet must outlive this object. Epochs follow
  // system_clock (Unix time, the same on every replica).
  SharedState(RedisClient& redis, BackendSet& backends, Options options, TicketSink tickets, LogSink log);
  ~SharedState();
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;

  // Subscribes, hands the local ticket key to the sink, starts the timers.
  // The first read from Redis happens when the client connects.
  void start();
  // Blocks until the admin keys and ticket keys were read from Redis once,
  // or `limit` passed. True when loaded.
  bool wait_loaded(std::chrono::milliseconds limit);
  bool loaded() const;

  // After the admin API set `server` of `backend` to `state` and `weight`
  // (the values as the change left them, not read back from the Server: a
  // reply to an earlier read may have been applied to it since): applies
  // them again, so that reply cannot win, then writes them to Redis and
  // announces them. Thread-safe; does not block. Servers not in the
  // BackendSet given at construction are ignored.
  void server_changed(const Backend& backend, const Server& server, AdminState state, uint32_t weight);

  // Changes received from Redis and applied to a Server (tests, metrics).
  uint64_t applied() const { return applied_.load(std::memory_order_relaxed); }
  // The epoch of `t` under the configured period (tests).
  int64_t epoch_of(std::chrono::system_clock::time_point t) const;

 private:
  struct Entry;
  struct Write {
    AdminState state;
    uint32_t weight;
  };

  // All below on the client thread.
  void on_connection(bool up);
  void flush_pending();
  void write(Entry& e);
  void read_all_admin();
  void read_admin(Entry& e, std::function<void(bool ok)> done);
  void apply(Entry& e, const RedisReply& reply);
  void on_admin_message(std::string_view payload);
  void sync_tickets();
  void update_ticket_keys();
  void arm_poll();
  void arm_boundary();
  void mark_loaded(bool admin_part);
  std::string ticket_key_name(int64_t epoch) const;
  int64_t current_epoch() const;
  void log(bool error, const std::string& line) const;

  RedisClient& redis_;
  const Options options_;
  TicketSink ticket_sink_;
  LogSink log_;
  std::vector<std::unique_ptr<Entry>> entries_;
  std::unordered_map<const Server*, Entry*> by_server_;  // read-only after construction

  // Client thread only.
  boost::asio::steady_timer poll_timer_;
  boost::asio::steady_timer boundary_timer_;
  bool connected_ = false;
  std::map<int64_t, std::string> epoch_keys_;  // raw 80-byte keys known from Redis (or written to it)
  std::string current_key_;                    // encrypts
  std::string previous_key_;                   // what encrypted before current_key_
  std::string sent_;                           // the set last handed to the sink, serialized
  bool admin_loaded_ = false;
  bool tickets_loaded_ = false;

  std::atomic<uint64_t> applied_{0};
  mutable std::mutex loaded_mutex_;
  std::condition_variable loaded_cv_;
  bool loaded_ = false;  // guarded by loaded_mutex_
};

}  // namespace sag::affinity
