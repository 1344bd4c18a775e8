// The admin state of each server (ready/drain/maint, weight) shared by
// replicas through Redis. Used with `affinity_store.type: redis` only; a
// single gateway keeps it locally and never builds this. (The TLS ticket
// keys replicas share travel the same way: tls/ticket_key_share.h.)
//
// A change made through one replica's admin API (server_changed()) is
// written to the HASH  PREFIX "admin:" BACKEND ":" SERVER  {state, weight}
// and announced on the channel PREFIX "admin" (payload "BACKEND\nSERVER").
// Every replica, the writer included, then re-reads that hash and applies
// it to its Server atomics, so concurrent writers converge on what Redis
// holds. A read sent before a local change is not applied after it. All
// admin keys of the local config are read when Redis (re)connects and every
// `poll_interval`, so a missed message never leaves replicas disagreeing
// for long. Only servers of the local config are read or applied. A change
// made while Redis is away is written when it returns, before anything is
// read back.
//
// Threads: everything runs on the RedisClient's thread except the
// constructor, start(), wait_loaded(), loaded() and server_changed()
// (thread-safe, e.g. from the admin thread).
//
// Lifetime: build it before the client starts (its subscription and state
// callback must exist when the client first comes up, or changes announced
// in between wait for the next poll). Its timer ends when the client stops;
// destroy it only once the client is stopped (thread joined) or if the
// client never starts: the client keeps callbacks into it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "affinity/model/backend.h"
#include "config/redis/redis_client.h"

namespace sag::affinity {

class SharedAdminState {
 public:
  using LogSink = redis::RedisClient::LogSink;

  struct Options {
    std::string key_prefix = "gw:";
    // Re-read of every admin key (a safety net under the announcements).
    std::chrono::milliseconds poll_interval = std::chrono::seconds(60);
  };

  // Registers with `redis` (call before redis.start(); see Lifetime). The
  // RedisClient and BackendSet must outlive this object (the gateway keeps
  // its first generation's set for the process's life: a reload's kept
  // servers share their state with it).
  SharedAdminState(redis::RedisClient& redis, BackendSet& backends, Options options, LogSink log);
  ~SharedAdminState();
  SharedAdminState(const SharedAdminState&) = delete;
  SharedAdminState& operator=(const SharedAdminState&) = delete;

  // Starts the poll timer. The first read from Redis happens when the
  // client connects.
  void start();
  // Blocks until every admin key was read from Redis once, or `limit`
  // passed. True when loaded.
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
  void read_all();
  void read(Entry& e, std::function<void(bool ok)> done);
  void apply(Entry& e, const redis::RedisReply& reply);
  void on_message(std::string_view payload);
  void arm_poll();
  void mark_loaded();
  void log(bool error, const std::string& line) const;

  redis::RedisClient& redis_;
  const Options options_;
  LogSink log_;
  std::vector<std::unique_ptr<Entry>> entries_;
  // By Server::State: a server kept by a reload is found through its new
  // generation's Server too. Servers a reload adds are not shared until the
  // next restart or upgrade. Read-only after construction.
  std::unordered_map<const void*, Entry*> by_server_;

  // Client thread only.
  boost::asio::steady_timer poll_timer_;
  bool connected_ = false;

  std::atomic<uint64_t> applied_{0};
  mutable std::mutex loaded_mutex_;
  std::condition_variable loaded_cv_;
  bool loaded_ = false;  // guarded by loaded_mutex_
};

}  // namespace sag::affinity
