// What a worker thread owns and every connection on it shares: its view of
// the current config generation (per-backend balancers, resolvers and server
// pools), the list of live connections (for graceful stop), and recycled
// body buffers.
// Everything here is confined to the worker's thread unless marked shared.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "affinity/clock.h"
#include "session/deadline.h"
#include "session/gateway_stats.h"
#include "session/generation.h"
#include "session/log_throttle.h"

namespace sag::session {

// Intrusive list node for a live client connection.
struct ConnectionHandle {
  ConnectionHandle* prev = nullptr;
  ConnectionHandle* next = nullptr;
  boost::asio::ip::tcp::socket* socket = nullptr;
  bool idle = false;  // between requests: waiting for the first byte of the next one
};

// A TCP relay of a backend with `on_down: close`, watched so that it is
// closed as soon as its server is down or in maint (SPEC §8).
struct ServerDownWatch {
  ServerDownWatch* prev = nullptr;
  ServerDownWatch* next = nullptr;
  const affinity::Server* watched = nullptr;
  // Ends the relay (on the worker's thread); called once.
  void (*close)(ServerDownWatch*) = nullptr;
};

// Fixed-size body relay buffers, recycled so that a connection holds one
// only while a request is in flight.
class BufferPool {
 public:
  static constexpr size_t kSize = 16 * 1024;
  // One buffer held for a scope (a request, a tunnel), returned on exit.
  struct Lease {
    explicit Lease(BufferPool& p) : pool(p), buf(p.take()) {}
    ~Lease() { pool.give_back(std::move(buf)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    char* get() const { return buf.get(); }
    BufferPool& pool;
    std::unique_ptr<char[]> buf;
  };
  std::unique_ptr<char[]> take() {
    // Not zeroed: a buffer that only ever carries small heads and bodies
    // then commits only the pages it touched (16 KiB zeroed = 4 pages).
    if (free_.empty()) return std::make_unique_for_overwrite<char[]>(kSize);
    auto b = std::move(free_.back());
    free_.pop_back();
    if (free_.size() < low_) low_ = free_.size();
    return b;
  }
  void give_back(std::unique_ptr<char[]> b) {
    if (free_.size() < kMaxFree) free_.push_back(std::move(b));
  }
  // Frees the buffers no take() reached since the last trim (the bottom of
  // the free list, below its low-water mark), so a burst does not keep its
  // peak for good. Call about once a second; returns the buffers freed.
  size_t trim() {
    const size_t unused = std::min(low_, free_.size());
    free_.erase(free_.begin(), free_.begin() + static_cast<std::ptrdiff_t>(unused));
    low_ = free_.size();
    return unused;
  }
  size_t free_count() const { return free_.size(); }

 private:
  // An exchange holds two (the body relay's and the server connection's
  // read buffer), and S3 has 512 streams in flight: 256 free buffers let
  // the swing between streams ending and starting go to malloc and free
  // (0.4 of each per stream). Trimmed within a second of going unused.
  static constexpr size_t kMaxFree = 1024;
  std::vector<std::unique_ptr<char[]>> free_;  // most recently given back last
  size_t low_ = 0;                             // least free_.size() since the last trim
};

struct WorkerContext {
  WorkerContext(boost::asio::io_context& io, GatewayStats& st, const affinity::Clock& clk,
                std::atomic<int64_t>& conns)
      : io(io), stats(st), clock(clk), process_connections(conns), deadlines(io.get_executor()) {}

  boost::asio::io_context& io;
  // New connections and requests take this one; replaced (on this thread)
  // by a reload.
  std::shared_ptr<const WorkerGeneration> current;
  GatewayStats& stats;                   // shared, atomics
  const affinity::Clock& clock;          // shared
  std::atomic<int64_t>& process_connections;  // shared: all workers' client connections
  // Every deadline of this worker's connections and HTTP/2 streams, on one
  // timer. Closed before the io_context goes (Worker's destructor).
  DeadlineGroup deadlines;
  BufferPool buffers;
  bool stopping = false;
  // The gateway's warning log (stderr), thread-safe; null when nobody
  // listens (unit tests). Set before the worker runs.
  void (*warn)(std::string_view line) = nullptr;
  // Failures a server caused and the gateway answered for (502, 504): at
  // most a line a second per worker, however often a server misbehaves.
  LogThrottle server_warnings{std::chrono::seconds(1)};

  void add(ConnectionHandle* h) {
    h->next = head_;
    if (head_) head_->prev = h;
    head_ = h;
  }
  void remove(ConnectionHandle* h) {
    if (h->prev) h->prev->next = h->next; else head_ = h->next;
    if (h->next) h->next->prev = h->prev;
    h->prev = h->next = nullptr;
  }
  // Graceful stop: idle connections are closed now; busy ones close after
  // their current response.
  void begin_stop() {
    stopping = true;
    for (ConnectionHandle* h = head_; h; h = h->next) {
      if (h->idle && h->socket) {
        boost::system::error_code ignored;
        h->socket->cancel(ignored);
      }
    }
  }
  // Force-closes everything (the shutdown timeout passed).
  void close_all() {
    for (ConnectionHandle* h = head_; h; h = h->next) {
      if (h->socket) {
        boost::system::error_code ignored;
        h->socket->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
        h->socket->cancel(ignored);
      }
    }
  }
  void watch(ServerDownWatch* w) {
    w->next = watches_;
    if (watches_) watches_->prev = w;
    watches_ = w;
  }
  void unwatch(ServerDownWatch* w) {
    if (w->prev) w->prev->next = w->next; else if (watches_ == w) watches_ = w->next;
    if (w->next) w->next->prev = w->prev;
    w->prev = w->next = nullptr;
  }
  bool watching() const { return watches_ != nullptr; }
  // Closes the watched relays whose server is down or in maint. Defined in
  // session/tcp/tcp_relay.cc.
  void close_relays_of_down_servers();

  int64_t live_connections() const {
    int64_t n = 0;
    for (ConnectionHandle* h = head_; h; h = h->next) ++n;
    return n;
  }

 private:
  ConnectionHandle* head_ = nullptr;
  ServerDownWatch* watches_ = nullptr;
};

// A client connection's place in the counts, for its coroutine's life: the
// listener's open connections, and the process's (which the accept loop
// took before the connection was served) given back at the end.
class ConnectionCount {
 public:
  ConnectionCount(WorkerContext& w, uint32_t listener) : worker_(w), listener_(listener) {
    worker_.stats.connection_opened(listener_);
  }
  ~ConnectionCount() {
    worker_.process_connections.fetch_sub(1, std::memory_order_relaxed);
    worker_.stats.connection_closed(listener_);
  }
  ConnectionCount(const ConnectionCount&) = delete;
  ConnectionCount& operator=(const ConnectionCount&) = delete;

 private:
  WorkerContext& worker_;
  uint32_t listener_;
};

}  // namespace sag::session
