#include "session/deadline.h"

#include <algorithm>
#include <cassert>

#include <boost/asio/this_coro.hpp>

#include "config/base/asio_prelude.h"

namespace sag::session {
namespace asio = boost::asio;

Deadline::Deadline(const asio::any_io_executor& ex) : timer_(std::in_place, ex) {}

Deadline::Deadline(DeadlineGroup& group) : group_(&group) { group.add(*this); }

Deadline::~Deadline() {
  if (group_) group_->remove(*this);
}

void Deadline::arm(Clock::time_point at, asio::ip::tcp::socket* victim) {
  fired_ = false;
  victim_ = victim;
  at_ = at;
  if (group_) {
    group_->moved(at);
  } else if (at < timer_->expiry()) {
    timer_->expires_at(at);  // wakes watch() to wait for the earlier time
  }
}

void Deadline::disarm() {
  fired_ = false;
  victim_ = nullptr;
  at_ = Clock::time_point::max();
}

void Deadline::cancel_now() {
  if (victim_) {
    boost::system::error_code ignored;
    victim_->cancel(ignored);
  }
}

void Deadline::fire() {
  fired_ = true;
  at_ = Clock::time_point::max();
  // The cancelled operations complete through the executor, never inside
  // this call, so a group may go on scanning its members.
  cancel_now();
}

asio::awaitable<void> Deadline::watch() {
  assert(timer_);
  // Through a reference: g++ 12 miscompiled `co_await timer_->async_wait(...)`
  // on the optional (the resumed frame jumped to a wrong address).
  asio::steady_timer& timer = *timer_;
  timer.expires_at(at_);
  for (;;) {
    co_await timer.async_wait(base::kTuple);
    if ((co_await asio::this_coro::cancellation_state).cancelled() !=
        asio::cancellation_type::none)
      co_return;
    if (Clock::now() >= at_) fire();
    // Sleep until the current deadline (possibly moved later meanwhile).
    timer.expires_at(at_);
  }
}

// ------------------------------------------------------------- DeadlineGroup

DeadlineGroup::~DeadlineGroup() { assert(head_ == nullptr); }

void DeadlineGroup::add(Deadline& d) {
  d.next_ = head_;
  if (head_) head_->prev_ = &d;
  head_ = &d;
}

void DeadlineGroup::remove(Deadline& d) {
  if (d.prev_) d.prev_->next_ = d.next_;
  else head_ = d.next_;
  if (d.next_) d.next_->prev_ = d.prev_;
  d.prev_ = d.next_ = nullptr;
}

DeadlineGroup::Clock::time_point DeadlineGroup::fire_due() {
  const auto now = Clock::now();
  auto next = Clock::time_point::max();
  for (Deadline* d = head_; d; d = d->next_) {
    if (d->at_ <= now) d->fire();
    else next = std::min(next, d->at_);
  }
  return next;
}

asio::awaitable<void> DeadlineGroup::watch() {
  // Through a reference, as in Deadline::watch (g++ 12).
  asio::steady_timer& timer = timer_;
  // Members may have been armed before the watch started.
  timer.expires_at(fire_due());
  for (;;) {
    co_await timer.async_wait(base::kTuple);
    if ((co_await asio::this_coro::cancellation_state).cancelled() !=
        asio::cancellation_type::none)
      co_return;
    timer.expires_at(fire_due());
  }
}

}  // namespace sag::session
