// Active health checks and the end of passive ejections (docs/configuration.md
// `health_check`, `passive`), one HealthChecker per process on its own thread
// and io_context.
//
// Per server of a backend with `health_check.type` http or tcp, a loop runs
// one check at a time: the first at start(), each next one `interval` (±10%
// jitter) after the previous one ended, each bounded by `timeout`. The first
// result decides the initial state (every checked server is down until then);
// after it, an up server goes down after `fall` consecutive failures and a
// down one comes up after `rise` consecutive successes. Servers of backends
// with `type: none` stay healthy.
//
// Passive ejection: the request path ejects (Server::eject). The checker ends
// it: after `passive.eject_for` for a backend without checks (probation), and
// after `eject_for` plus a successful check started after that for a backend
// with checks.
//
// The request path only reads the Server atomics this class writes; all other
// state lives on the checker's thread, except last_check() texts (a mutex per
// server, read by the admin listener), the map the admin listener finds them
// through (its own mutex) and the first-round counter.
//
// A reload (update()) replaces the checked set: a kept server (same
// Server::State) keeps its health, its rise/fall progress and its last
// result, and is checked at once at its (possibly new) address; a new one
// starts down until its first result when its backend is checked; a server
// whose backend no longer runs checks is up.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "affinity/model/backend.h"

namespace sag::gateway {

class HealthChecker {
 public:
  // Marks every server with active checks down (until its first result).
  // `seed` feeds the interval jitter. The servers must outlive the checker.
  explicit HealthChecker(const affinity::BackendSet& backends, uint64_t seed = 0);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Starts the thread (once); the first checks run at once. No thread when
  // no backend has checks or passive ejection.
  void start();
  // Blocks until every checked server has had its first result, or max_wait
  // passed; true when all have. True at once when nothing is checked.
  bool wait_first_round(std::chrono::milliseconds max_wait);
  // Ends the thread promptly: checks in flight are abandoned and their
  // sockets closed. Servers keep their last health. Idempotent.
  void stop();

  // Thread-safe. "200 in 3ms", "connected in 1ms", "status 500 in 2ms",
  // "timeout after 500ms", "connection refused", ...; "-" before the first
  // check or when the server is not checked (or unknown).
  std::string last_check(const affinity::Server& server) const;

  // Whether the server's backend runs active checks.
  bool checked(const affinity::Server& server) const;

  // A reload: checks `backends` from now on (the checker's own thread
  // applies the change; checks of the previous set stop at their next step,
  // each holding the set it checks until then). Call from one thread (the
  // gateway's main thread), after start().
  void update(std::shared_ptr<const affinity::BackendSet> backends);

 private:
  struct Entry;
  struct Result {
    bool ok = false;
    std::string text;
  };

  boost::asio::awaitable<void> check_loop(Entry& e);
  boost::asio::awaitable<Result> check_once(Entry& e, std::chrono::steady_clock::time_point started);
  boost::asio::awaitable<Result> probe(Entry& e, boost::asio::ip::tcp::socket& socket,
                                       std::chrono::steady_clock::time_point started);
  // type redis: PING (AUTH, ROLE, INFO replication), gateway/redis_check.h.
  boost::asio::awaitable<Result> redis_probe(Entry& e, boost::asio::ip::tcp::socket& socket,
                                             std::chrono::steady_clock::time_point started);
  void apply(Entry& e, const Result& r, std::chrono::steady_clock::time_point started,
             std::chrono::steady_clock::time_point now);
  void poll_ejections();
  std::chrono::milliseconds jittered(std::chrono::milliseconds interval);

  // The entries of `backends`, without their checker-thread state.
  // `keep`: held by each entry (null: the set outlives the checker).
  static std::vector<std::unique_ptr<Entry>> make_entries(
      const affinity::BackendSet& backends, const std::shared_ptr<const affinity::BackendSet>& keep);
  // On the checker thread: `next` replaces entries_ (update()).
  void swap_in(std::vector<std::unique_ptr<Entry>> next);
  void spawn(Entry& e);

  std::vector<std::unique_ptr<Entry>> entries_;  // checker thread (after start)
  // Entries a reload replaced, until their loops have ended (checker thread).
  std::vector<std::unique_ptr<Entry>> retired_;
  mutable std::mutex map_mu_;
  std::unordered_map<const void*, Entry*> by_state_;  // Server::State -> entry, under map_mu_
  bool any_checked_ = false;
  bool any_passive_ = false;
  std::mt19937_64 rng_;  // checker thread only

  mutable std::mutex first_mu_;
  std::condition_variable first_cv_;
  size_t first_pending_ = 0;
  bool first_aborted_ = false;  // stop() wakes waiters

  std::mutex run_mu_;  // start()/stop()
  bool started_ = false;
  bool stopped_ = false;
  // Destroyed (in stop()) before the entries: suspended check coroutines
  // refer to them.
  std::unique_ptr<boost::asio::io_context> io_;
  std::shared_ptr<void> work_;  // keeps io_ running until stop()
  std::unique_ptr<boost::asio::steady_timer> eject_timer_;
  std::thread thread_;
};

}  // namespace sag::gateway
