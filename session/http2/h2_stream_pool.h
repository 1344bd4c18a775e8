// The stream objects of one HTTP/2 connection, reused by its later streams
// (H2Stream::reuse), so that a stream costs no allocation and no Forwarder
// setup once the connection has warmed up, and the Forwarder's strings keep
// their capacity from one stream to the next, as over HTTP/1.1.
//
// Thread: the connection's worker. Objects live as long as the pool (or
// until trim()); take() hands one out, release_if_unused() takes it back
// once nghttp2 closed its stream and its coroutine, if any, ended.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "session/client_port.h"
#include "session/forward/forwarder.h"
#include "session/http2/h2_stream.h"

namespace sag::session {

struct ClientConnection;

// A stream with the Forwarder that serves it and the client side the
// Forwarder sees (made by the session once per object: it names the
// session and this object, so it serves every later stream too).
struct PooledStream : H2Stream {
  PooledStream(const boost::asio::any_io_executor& ex, DeadlineGroup& group, ClientConnection& conn,
               ConnectionPin& pin)
      : H2Stream(ex, group), forwarder(conn, pin, deadline) {}
  Forwarder forwarder;
  std::unique_ptr<ClientPort> port;
};

class H2StreamPool {
 public:
  H2StreamPool(const boost::asio::any_io_executor& ex, DeadlineGroup& group, ClientConnection& conn,
               ConnectionPin& pin)
      : ex_(ex), group_(group), conn_(conn), pin_(pin) {}

  // An object for stream `id`, reset (may throw std::bad_alloc). The free
  // list has room for it to come back without allocating.
  PooledStream& take(int32_t id);
  // Back to the pool once nghttp2 closed the stream and its coroutine, if it
  // had one, ended: each of the two calls this once, the second gives back.
  // The request's fields and the response head's storage go back to the
  // worker's cache then (nothing refers to them any more): a free stream
  // object holds no header storage, and the next stream's comes warm.
  void release_if_unused(H2Stream& st) {
    if (!st.closed || (st.started && !st.done)) return;
    st.req.clear();  // (its fields; reuse() resets the rest)
    st.head.release();
    free_.push_back(static_cast<PooledStream*>(&st));
  }
  // Keeps `keep` objects; only when every object is free (no stream open or
  // running), never inside nghttp2's callbacks.
  void trim(size_t keep);

  size_t size() const { return all_.size(); }
  // Every object made, in use or not.
  const std::vector<std::unique_ptr<PooledStream>>& all() const { return all_; }

 private:
  boost::asio::any_io_executor ex_;
  DeadlineGroup& group_;
  ClientConnection& conn_;
  ConnectionPin& pin_;
  std::vector<std::unique_ptr<PooledStream>> all_;
  std::vector<PooledStream*> free_;
};

}  // namespace sag::session
