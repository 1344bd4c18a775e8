// A deadline that bounds whatever a connection (or an HTTP/2 stream) is
// waiting for: when it passes, the chosen socket's pending operations are
// cancelled (the socket stays open, so a 408 or 504 can still be written).
//
// Every deadline of a worker is kept by the worker's DeadlineGroup: one
// timer and a heap, no timer and no watching coroutine per connection or
// per stream (an idle connection holds no timer operation of its own).
//
// Re-arming is cheap: moving a deadline later only updates a field (the
// heap keeps the earlier time and fixes it when it comes up); moving it
// earlier sifts it up, and touches the timer only when it becomes the
// group's earliest. Thread: the worker's (the group's io_context).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/base/coarse_clock.h"

namespace sag::session {

class DeadlineGroup;

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  // Kept by `group`, which must outlive this deadline.
  explicit Deadline(DeadlineGroup& group) : group_(group) {}
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // Cancels `victim`'s pending operations at `at` (unless re-armed first).
  void arm(Clock::time_point at, boost::asio::ip::tcp::socket* victim);
  // `d` from now, read from the coarse clock and rounded up by its
  // resolution: at most a tick late, and early only by how late the kernel
  // ran its last tick (coarse_clock.h: usually a fraction of a millisecond).
  void arm_after(Clock::duration d, boost::asio::ip::tcp::socket* victim) {
    arm(base::coarse_steady_now() + base::coarse_resolution() + d, victim);
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

 private:
  friend class DeadlineGroup;
  static constexpr size_t kNotQueued = static_cast<size_t>(-1);
  // The deadline passed: cancel the victim, count it as fired.
  void fire();

  DeadlineGroup& group_;
  Clock::time_point at_ = Clock::time_point::max();   // when it passes; max: disarmed
  Clock::time_point key_ = Clock::time_point::max();  // its place in the heap, <= at_
  size_t slot_ = kNotQueued;                          // its index in the heap
  boost::asio::ip::tcp::socket* victim_ = nullptr;
  bool fired_ = false;
};

// One worker's deadlines on one timer: a binary min-heap of the members'
// keys; the timer sleeps until the earliest. A wake-up fires what is due
// and re-queues what was moved later meanwhile. No coroutine: the timer's
// handler re-arms itself while a deadline is queued, so an io_context with
// nothing armed runs out of work (tests rely on that).
class DeadlineGroup {
 public:
  using Clock = Deadline::Clock;

  explicit DeadlineGroup(const boost::asio::any_io_executor& ex);
  // Members must be gone first.
  ~DeadlineGroup();
  DeadlineGroup(const DeadlineGroup&) = delete;
  DeadlineGroup& operator=(const DeadlineGroup&) = delete;

  // Drops the timer while its io_context is still alive (a worker calls it
  // before destroying the io_context, whose coroutine frames may hold
  // members that still leave the group afterwards). Nothing fires after.
  void close();
  // Deadlines in the heap (armed, or disarmed and not yet dropped): tests.
  size_t queued() const { return heap_.size(); }

 private:
  friend class Deadline;
  // `d.at_` changed: queue it, or move it up when it became earlier.
  void schedule(Deadline& d);
  void remove(Deadline& d);
  void fire_due();
  // Makes the timer wait for the heap's earliest key (if earlier than the
  // wait under way, or none is).
  void rearm();
  void on_wait();

  void place(size_t i, Deadline* d) {
    heap_[i] = d;
    d->slot_ = i;
  }
  void sift_up(size_t i);
  void sift_down(size_t i);
  void pop_at(size_t i);

  std::vector<Deadline*> heap_;
  std::optional<boost::asio::steady_timer> timer_;
  bool waiting_ = false;
  Clock::time_point waiting_for_ = Clock::time_point::max();
  // Shared with the pending wait's handler, which may run after the group
  // is gone (an io_context run again after its worker's state was freed).
  std::shared_ptr<DeadlineGroup*> self_;
};

}  // namespace sag::session
