// One timer per connection that bounds whatever the connection is waiting
// for: when the deadline passes, the chosen socket's pending operations are
// cancelled (the socket stays open, so a 408 or 504 can still be written).
//
// Re-arming is cheap: moving the deadline later only updates a field; the
// timer is touched only when the deadline moves earlier. Thread: the
// connection's strand (its worker's io_context). watch() must run for as
// long as arm() is used, e.g. `co_await (serve() || deadline.watch())`.
#pragma once

#include <chrono>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sag::session {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Deadline(const boost::asio::any_io_executor& ex);

  // Cancels `victim`'s pending operations at `at` (unless re-armed first).
  void arm(Clock::time_point at, boost::asio::ip::tcp::socket* victim);
  void arm_after(Clock::duration d, boost::asio::ip::tcp::socket* victim) {
    arm(Clock::now() + d, victim);
  }
  void disarm();
  // Cancels the victim's pending operations now, without counting as the
  // deadline passing (fired() stays false): the exchange was abandoned.
  void cancel_now();
  // `victim` is going away: the deadline no longer refers to it (disarmed
  // when it was the victim).
  void forget(boost::asio::ip::tcp::socket* victim) {
    if (victim_ == victim) disarm();
  }
  // Whether the deadline passed since the last arm().
  bool fired() const { return fired_; }

  boost::asio::awaitable<void> watch();

 private:
  boost::asio::steady_timer timer_;
  Clock::time_point at_ = Clock::time_point::max();
  boost::asio::ip::tcp::socket* victim_ = nullptr;
  bool fired_ = false;
};

}  // namespace sag::session
