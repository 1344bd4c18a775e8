// State of one client connection shared by its protocol session: who the
// client is, the connection's deadline, and its registration with the
// worker for graceful stop.
#pragma once

#include <chrono>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "session/deadline.h"
#include "session/header_rules.h"
#include "session/worker_context.h"

namespace sag::session {

struct ClientConnection : ConnectionHandle {
  ClientConnection(WorkerContext& w, std::shared_ptr<const WorkerGeneration> g,
                   const ListenerRuntime& l, boost::asio::ip::tcp::socket& s)
      : worker(w), gen(std::move(g)), listener(&l), lowest(s), deadline(w.deadlines) {
    socket = &s;
    worker.add(this);
  }
  ~ClientConnection() { worker.remove(this); }
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Fills `client`, `client_ip` and the accept times from the peer's
  // address (an IPv4-mapped IPv6 address as IPv4). Defined in client_session.cc.
  void describe(const boost::asio::ip::tcp::endpoint& remote);

  // Between requests: moves to the worker's current generation (a reload
  // happened) unless that one no longer has this connection's listener (the
  // connection then finishes on its own, as on a graceful stop). True when
  // it moved.
  bool refresh() {
    if (gen == worker.current) return false;
    const ListenerRuntime* l = worker.current->shared->listener(listener->id);
    if (!l) return false;
    gen = worker.current;
    listener = l;
    return true;
  }

  WorkerContext& worker;
  // The generation new requests of this connection use, and its listener.
  std::shared_ptr<const WorkerGeneration> gen;
  const ListenerRuntime* listener;
  boost::asio::ip::tcp::socket& lowest;  // the TCP socket under any TLS
  Deadline deadline;
  ClientAddress client;
  std::string client_ip;  // storage for client.ip_text
  std::chrono::steady_clock::time_point accepted;
  std::chrono::system_clock::time_point accepted_wall;
  // Set when the gateway answered an error: unread request bytes may remain,
  // and closing with them unread would reset the connection and could
  // destroy the answer before the client reads it.
  bool linger = false;
};

}  // namespace sag::session
