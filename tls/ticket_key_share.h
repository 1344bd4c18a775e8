// The TLS session ticket keys replicas share through Redis, so a session
// resumed on any replica finds its key. Used with `affinity_store.type:
// redis` and a TLS listener with session tickets only; a single gateway
// rotates its TicketKeys by itself and never builds this.
//
// Time is cut into epochs of `ticket_period` (Unix time / period, the same
// on every replica). Epoch E's key lives at PREFIX "tls:ticket:" E, created
// by whichever replica's SET NX lands first (so replicas starting at once
// agree) with a TTL of four periods, and announced on PREFIX "tls". A
// replica encrypts with epoch E's key and decrypts with E-1's, E+1's (made
// a period early, so clock skew at the boundary costs nothing) and the key
// it encrypted with before; it switches at the boundary by its own clock,
// and re-reads at (re)connect, on announcements and every `poll_interval`.
// A restarted replica finds E-1 and E in Redis and resumes old sessions.
// Without Redis it keeps the keys it has; at start with Redis down it uses
// a local random key and adopts Redis's when it returns (the local key
// still decrypts for a period). Values are "v1:" and the TicketKey::kBytes
// (80) byte key in hex: name (16), AES-256 key (32), HMAC key (32), the
// wire form of TicketKey. Keys this replica knows are written back (SET NX)
// when Redis lost them.
//
// Threads: everything runs on the RedisClient's thread except the
// constructor, start(), wait_loaded() and loaded().
//
// Lifetime: build it before the client starts (its subscription and state
// callback must exist when the client first comes up). Its timers end when
// the client stops; destroy it only once the client is stopped (thread
// joined) or if the client never starts: the client keeps callbacks into it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "config/redis/redis_client.h"

namespace sag::tls {

class TicketKeyShare {
 public:
  // `current` encrypts new tickets, each of `decrypt_only` still decrypts;
  // every string is a TicketKey's wire form (TicketKey::kBytes long).
  // Called from start() (the local key) and then on the Redis client
  // thread, only when the set changes.
  using Sink =
      std::function<void(const std::string& current, const std::vector<std::string>& decrypt_only)>;
  using LogSink = redis::RedisClient::LogSink;

  struct Options {
    std::string key_prefix = "gw:";
    std::chrono::milliseconds ticket_period = std::chrono::hours(12);
    // Re-read of the ticket epochs (a safety net under the announcements).
    std::chrono::milliseconds poll_interval = std::chrono::seconds(60);
  };

  // Registers with `redis` (call before redis.start(); see Lifetime); the
  // RedisClient must outlive this object. Epochs follow system_clock (Unix
  // time, the same on every replica).
  TicketKeyShare(redis::RedisClient& redis, Options options, Sink sink, LogSink log);
  ~TicketKeyShare();
  TicketKeyShare(const TicketKeyShare&) = delete;
  TicketKeyShare& operator=(const TicketKeyShare&) = delete;

  // Hands the local key to the sink and starts the timers. The first read
  // from Redis happens when the client connects.
  void start();
  // Blocks until the ticket keys were read from Redis once, or `limit`
  // passed. True when loaded.
  bool wait_loaded(std::chrono::milliseconds limit);
  bool loaded() const;

  // The epoch of `t` under the configured period (tests).
  int64_t epoch_of(std::chrono::system_clock::time_point t) const;

 private:
  // All below on the client thread.
  void on_connection(bool up);
  void sync();
  void update_keys();
  void arm_poll();
  void arm_boundary();
  void mark_loaded();
  std::string key_name(int64_t epoch) const;
  int64_t current_epoch() const;
  void log(bool error, const std::string& line) const;

  redis::RedisClient& redis_;
  const Options options_;
  Sink sink_;
  LogSink log_;

  // Client thread only.
  boost::asio::steady_timer poll_timer_;
  boost::asio::steady_timer boundary_timer_;
  bool connected_ = false;
  std::map<int64_t, std::string> epoch_keys_;  // raw keys known from Redis (or written to it)
  std::string current_key_;                    // encrypts
  std::string previous_key_;                   // what encrypted before current_key_
  std::string sent_;                           // the set last handed to the sink, serialized

  mutable std::mutex loaded_mutex_;
  std::condition_variable loaded_cv_;
  bool loaded_ = false;  // guarded by loaded_mutex_
};

}  // namespace sag::tls
