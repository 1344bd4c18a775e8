// One HTTP/2 stream's state in an Http2Session: the request as it arrives,
// its body window, the response bytes on offer to nghttp2, and the wake-up
// and deadline of the stream's coroutine. A session reuses its H2Streams
// for later streams (reuse()), so a stream costs no allocation and no
// timer setup once the connection has warmed up.
//
// Thread: the connection's worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/base/asio_prelude.h"
#include "config/base/coarse_clock.h"
#include "session/deadline.h"
#include "session/exchange.h"
#include "session/http2/head_list.h"
#include "session/http_message.h"

namespace sag::session {

// A one-waiter wake-up: notify() before wait_until() is not lost.
// notify() touches the timer only while a wait is pending: most
// notifications (every frame a stream's data goes out in) find nobody
// waiting, and a cancel is a trip into the reactor's timer queue.
class Signal {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Signal(const boost::asio::any_io_executor& ex) : timer_(ex) {}
  void notify() {
    pending_ = true;
    if (waiting_) {
      waiting_ = false;
      timer_.cancel();
    }
  }
  // Forgets a notification nobody waited for (no waiter may be pending).
  void clear() { pending_ = false; }
  // True when notified, false when `at` passed first.
  boost::asio::awaitable<bool> wait_until(Clock::time_point at) {
    if (!pending_) {
      timer_.expires_at(at);
      waiting_ = true;
      co_await timer_.async_wait(base::kTuple);
      waiting_ = false;
    }
    const bool notified = pending_;
    pending_ = false;
    co_return notified;
  }
  // As wait_until(now + d), but the clock is read only when there is
  // something to wait for, and coarsely (as Deadline::arm_after: at most a
  // tick late): a timeout of seconds needs no fine reading per wait. (The
  // awaitable starts when awaited, right after this call: pending_ can't
  // change in between.)
  boost::asio::awaitable<bool> wait_for(Clock::duration d) {
    return wait_until(pending_ ? Clock::time_point{}
                               : base::coarse_steady_now() + base::coarse_resolution() + d);
  }

 private:
  boost::asio::steady_timer timer_;
  bool pending_ = false;
  bool waiting_ = false;  // a wait_until is suspended on timer_
};

// What a new stream starts from; reuse() resets it in one assignment.
struct H2StreamFlags {
  bool has_method = false, has_path = false, has_host = false;
  size_t header_bytes = 0;
  uint32_t header_count = 0;
  bool too_large = false;
  bool end_stream_in = false;  // the client's request is complete
  uint64_t body_received = 0;
  size_t in_off = 0;  // taken part of `in`
  // Response bytes offered to nghttp2 (owned by the Forwarder's buffer
  // until copied into frames by the data source callback).
  const char* out = nullptr;
  size_t out_len = 0;
  bool out_last = false;
  bool deferred = false;    // the data source said "no data yet"
  bool submitted = false;   // the response head went to nghttp2
  bool head_out = false;    // its HEADERS frame was made: nghttp2 needs `head` no more
  bool eof_sent = false;    // the response's last frame went out
  bool reset_sent = false;  // the gateway reset the stream
  bool closed = false;      // nghttp2 closed the stream
  bool started = false;     // the stream's coroutine was started
  bool done = false;        // the stream's coroutine ended
};

struct H2Stream : H2StreamFlags {
  // The deadline is kept by `group` (the worker's).
  H2Stream(const boost::asio::any_io_executor& ex, DeadlineGroup& group, int32_t stream_id = 0)
      : id(stream_id), sig(ex), deadline(group) {}

  // Starts stream `stream_id` on this object: every field as new, the
  // strings' capacity kept. Nothing may wait on sig or deadline.
  void reuse(int32_t stream_id) {
    static_cast<H2StreamFlags&>(*this) = H2StreamFlags{};
    id = stream_id;
    req = Request{};
    authority.clear();
    host.clear();
    cookie.clear();
    in.clear();
    answer_body.clear();
    sig.clear();
    deadline.disarm();
    x.reset();
  }

  int32_t id;
  // The request as it arrives.
  Request req;
  std::string authority, host, cookie;
  // Request body received and not yet taken by the Forwarder; counted
  // against the flow-control windows until taken.
  std::string in;
  std::string answer_body;  // the gateway's own answer
  // The response head as submitted: nghttp2 points into it (no copy) until
  // the HEADERS frame is made (head_out; usually at once, Http2Session::
  // pack), or the stream closed; given back then.
  HeadList head;
  Signal sig;               // wakes the stream's coroutine
  Deadline deadline;        // bounds the server side
  Exchange x;
};

}  // namespace sag::session
