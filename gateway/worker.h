// One event loop on its own thread: its acceptors (one per listener, bound
// with SO_REUSEPORT so the kernel spreads connections across workers), its
// connections, and its view of the current config generation (per-backend
// balancers and server pools). Nothing on a worker is touched by another
// thread except through its mailbox (WorkerMailbox; its io_context runs
// without locks).
#pragma once

#include <atomic>
#include <functional>
#include <string>
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

class WorkerMailbox;

class Worker {
 public:
  // `index` staggers the balancers so workers don't all start on the same
  // server. `generation` is the first config generation.
  Worker(unsigned index, std::shared_ptr<const session::Generation> generation,
         affinity::AffinityStore& store, session::GatewayStats& stats, const affinity::Clock& clock,
         std::atomic<int64_t>& process_connections);
  ~Worker();

  // A listening socket for listener `id` (`key`: its address, as a binary
  // upgrade names it). `refusal_log` throttles the warning about
  // connections refused at limits.max_connections on this listener; it is
  // shared by every worker (one line a minute per listener for the process)
  // and outlives the Worker. Main thread; before start() or through
  // adopt() after.
  struct NewAcceptor {
    uint32_t id;
    std::string key;
    int fd;
    boost::asio::ip::tcp protocol;
    session::LogThrottle* refusal_log;
  };
  void add_acceptor(NewAcceptor a);
  void start();
  // A reload (main thread): the worker moves to `generation` (new
  // connections and requests take it), closes the acceptors of listeners it
  // lacks and starts `added`; `done` runs on the worker's thread after.
  void adopt(std::shared_ptr<const session::Generation> generation,
             std::vector<NewAcceptor> added, std::function<void()> done);
  // The acceptors' sockets by address (a binary upgrade hands them to the
  // new process). Main thread.
  const std::vector<std::pair<std::string, int>>& listening_fds() const { return listening_fds_; }
  // Thread-safe. Closes the acceptors at once, then idle connections.
  void begin_stop();
  // Thread-safe. Drops every remaining connection (shutdown timeout).
  void force_close();
  // Ends the loop and joins the thread. From one thread (main) at a time;
  // again, or before start(), it does nothing.
  void stop_and_join();

 private:
  void sweep_pools();
  void watch_down_servers();
  void spawn_accept(size_t acceptor);

  // Torn down in a fixed order by ~Worker: sockets and timers before the
  // io_context, and the io_context (which destroys suspended coroutine
  // frames that still refer to the context) before the context.
  unsigned index_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<WorkerMailbox> mail_;  // other threads' one way in
  std::unique_ptr<session::WorkerContext> ctx_;
  struct Acceptor {
    boost::asio::ip::tcp::acceptor acceptor;
    uint32_t listener;  // ListenerRuntime::id
    session::LogThrottle* refusal_log;
  };
  // Never shrinks while the worker runs (accept loops refer to entries);
  // a closed one stays until the Worker goes.
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::vector<std::pair<std::string, int>> listening_fds_;  // main thread
  std::vector<uint32_t> listening_ids_;                     // parallel, main thread
  affinity::AffinityStore& store_;
  std::shared_ptr<const session::Generation> first_;  // until start() builds the view
  std::unique_ptr<boost::asio::steady_timer> sweeper_;
  std::unique_ptr<boost::asio::steady_timer> watcher_;  // on_down: close
  std::thread thread_;
};

}  // namespace sag::gateway
