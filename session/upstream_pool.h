// Idle keep-alive connections to the servers of one backend, for one worker
// (thread-confined: no locks). Connections are handed out most recently
// used first (their TCP state is warm) and every one is checked before
// reuse: an idle HTTP/1.1 connection with anything to read (bytes the
// server sent after its response, or EOF) is closed, never handed out, so
// stray bytes can't be read as the answer to another client's request.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "config/base/block_cache.h"
#include "config/gateway_config.h"

namespace sag::session {

class UpstreamPool {
 public:
  using Clock = std::chrono::steady_clock;
  using Socket = boost::asio::ip::tcp::socket;
  // A connection moves between the pool and an exchange as a pointer: a
  // socket's own move copies its executor and re-homes its reactor state
  // (about 200 instructions each way, on every keep-alive request).
  using SocketPtr = base::Pooled<Socket>;

  UpstreamPool(size_t server_count, const config::PoolConfig& config);

  // An idle connection to server `index` that has nothing to read, or
  // null. Costs no system call when the reactor saw no event on the
  // connection since its response was read to the end (base::
  // maybe_readable), else one non-blocking recv(MSG_PEEK); connections
  // found readable, closed or past idle_timeout are closed.
  // `now` here and below may be a coarse reading (base/coarse_clock.h);
  // take() wants one rounded up, so that no connection passes that idled
  // longer than idle_timeout.
  SocketPtr take(uint32_t index, Clock::time_point now);
  // Keeps `socket` (not null) for reuse, or closes it when the server's idle
  // list is full.
  void give_back(uint32_t index, SocketPtr socket, Clock::time_point now);
  // Closes every idle connection to server `index`: one of them turned out
  // closed by the server, so the older ones (the server restarted, or timed
  // them out together) almost certainly are too.
  void drop(uint32_t index);
  // Closes connections idle longer than idle_timeout, and any the server
  // closed meanwhile. Call about once a second.
  void sweep(Clock::time_point now);
  void close_all();
  size_t idle_count() const;
  // A reload: room for `server_count` server ids and the backend's new pool
  // settings (idle connections over the new max_idle_per_server go at their
  // next give_back or sweep).
  void reconfigure(size_t server_count, const config::PoolConfig& config);

 private:
  struct Idle {
    SocketPtr socket;
    Clock::time_point since;
  };
  static bool still_open(Socket& s);

  config::PoolConfig config_;
  std::vector<std::vector<Idle>> idle_;  // per server, oldest first
};

}  // namespace sag::session
