// One event loop on its own thread: its acceptors (one per listener, bound
// with SO_REUSEPORT so the kernel spreads connections across workers), its
// connections, and its per-backend balancers and server pools. Nothing on a
// worker is touched by another thread except through post().
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "affinity/store/affinity_store.h"
#include "affinity/model/backend.h"
#include "session/log_throttle.h"
#include "session/worker_context.h"

namespace sag::gateway {

class Worker {
 public:
  // `index` staggers the balancers so workers don't all start on the same
  // server.
  Worker(unsigned index, std::shared_ptr<const config::GatewayConfig> config,
         affinity::BackendSet& backends, affinity::AffinityStore& store,
         session::AccessLog& log, session::GatewayStats& stats, const affinity::Clock& clock,
         std::atomic<int64_t>& process_connections);
  ~Worker();

  boost::asio::io_context& io() { return *io_; }
  // Before start(): takes an acceptor already bound and listening.
  // `refusal_log` throttles the warning about connections refused at
  // limits.max_connections on this listener; it is shared by every worker
  // (one line a minute per listener for the process) and outlives the
  // Worker.
  void add_acceptor(boost::asio::ip::tcp::acceptor acceptor,
                    const session::ListenerRuntime& listener, session::LogThrottle& refusal_log);
  void start();
  // The acceptors' sockets (a binary upgrade hands them to the new
  // process), as they were added: valid until begin_stop() closes them.
  const std::vector<std::pair<const session::ListenerRuntime*, int>>& listening_fds() const {
    return listening_fds_;
  }
  // Thread-safe. Closes the acceptors at once, then idle connections.
  void begin_stop();
  // Thread-safe. Drops every remaining connection (shutdown timeout).
  void force_close();
  // Thread-safe. Ends the loop and joins the thread.
  void stop_and_join();

 private:
  void sweep_pools();

  // Torn down in a fixed order by ~Worker: sockets and timers before the
  // io_context, and the io_context (which destroys suspended coroutine
  // frames that still refer to the context) before the context.
  unsigned index_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<session::WorkerContext> ctx_;
  struct Acceptor {
    boost::asio::ip::tcp::acceptor acceptor;
    const session::ListenerRuntime* listener;
    session::LogThrottle* refusal_log;
  };
  std::vector<Acceptor> acceptors_;
  std::vector<std::pair<const session::ListenerRuntime*, int>> listening_fds_;
  std::unique_ptr<boost::asio::steady_timer> sweeper_;
  uint64_t max_connections_;
  std::thread thread_;
};

}  // namespace sag::gateway
