// A deadline that bounds whatever a connection (or an HTTP/2 stream) is
// waiting for: when it passes, the chosen socket's pending operations are
// cancelled (the socket stays open, so a 408 or 504 can still be written).
//
// Two ways to keep time:
//  - its own timer (Deadline(executor)): watch() must run for as long as
//    arm() is used, e.g. `co_await (serve() || deadline.watch())`;
//  - a DeadlineGroup's (Deadline(group)): one timer and one watching
//    coroutine for every stream of an HTTP/2 connection, so a stream costs
//    no timer and no coroutine of its own.
//
// Re-arming is cheap: moving the deadline later only updates a field; the
// timer is touched only when the deadline moves earlier than the timer's
// expiry. Thread: the connection's strand (its worker's io_context).
#pragma once

#include <chrono>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sag::session {

class DeadlineGroup;

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Deadline(const boost::asio::any_io_executor& ex);
  // Kept by `group`'s timer; the group must outlive this deadline.
  explicit Deadline(DeadlineGroup& group);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

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

  // Own-timer deadlines only.
  boost::asio::awaitable<void> watch();

 private:
  friend class DeadlineGroup;
  // The deadline passed: cancel the victim, count it as fired.
  void fire();

  std::optional<boost::asio::steady_timer> timer_;  // own timer, or none in a group
  DeadlineGroup* group_ = nullptr;
  Deadline* prev_ = nullptr;  // the group's list
  Deadline* next_ = nullptr;
  Clock::time_point at_ = Clock::time_point::max();
  boost::asio::ip::tcp::socket* victim_ = nullptr;
  bool fired_ = false;
};

// One timer for many deadlines (an HTTP/2 connection's streams). watch()
// sleeps until the earliest armed member's time, fires the members that are
// due, and sleeps again; it ends when cancelled (run it beside the
// connection's work, e.g. `co_await (serve() || group.watch())`). A wake-up
// scans the members: they are bounded by the connection's stream limit, and
// wake-ups happen only when a deadline passes or moves earlier.
class DeadlineGroup {
 public:
  using Clock = Deadline::Clock;

  explicit DeadlineGroup(const boost::asio::any_io_executor& ex) : timer_(ex) {}
  ~DeadlineGroup();  // members must be gone first
  DeadlineGroup(const DeadlineGroup&) = delete;
  DeadlineGroup& operator=(const DeadlineGroup&) = delete;

  boost::asio::awaitable<void> watch();

 private:
  friend class Deadline;
  void add(Deadline& d);
  void remove(Deadline& d);
  // Fires the members that are due; returns the earliest time left.
  Clock::time_point fire_due();
  // A member's time moved to `at`: wake earlier if needed.
  void moved(Clock::time_point at) {
    if (at < timer_.expiry()) timer_.expires_at(at);
  }

  boost::asio::steady_timer timer_;
  Deadline* head_ = nullptr;
};

}  // namespace sag::session
