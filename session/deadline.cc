#include "session/deadline.h"

#include <cassert>
#include <utility>

namespace sag::session {
namespace asio = boost::asio;

// ------------------------------------------------------------------ Deadline

Deadline::~Deadline() {
  if (slot_ != kNotQueued) group_.remove(*this);
}

void Deadline::arm(Clock::time_point at, asio::ip::tcp::socket* victim) {
  fired_ = false;
  victim_ = victim;
  at_ = at;
  group_.schedule(*this);
}

void Deadline::disarm() {
  // Stays queued: dropped when its key comes up, so re-arming soon after
  // (the usual case, once per request) costs no heap work.
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
  // this call, so the group may go on with its heap.
  cancel_now();
}

// ------------------------------------------------------------- DeadlineGroup

DeadlineGroup::DeadlineGroup(const asio::any_io_executor& ex)
    : timer_(std::in_place, ex), self_(std::make_shared<DeadlineGroup*>(this)) {}

DeadlineGroup::~DeadlineGroup() {
  assert(heap_.empty());
  close();
}

void DeadlineGroup::close() {
  *self_ = nullptr;
  timer_.reset();
}

void DeadlineGroup::schedule(Deadline& d) {
  if (d.slot_ == Deadline::kNotQueued) {
    if (d.at_ == Clock::time_point::max()) return;
    d.key_ = d.at_;
    heap_.push_back(&d);
    d.slot_ = heap_.size() - 1;
    sift_up(d.slot_);
  } else if (d.at_ < d.key_) {
    d.key_ = d.at_;
    sift_up(d.slot_);
  } else {
    return;  // later: the heap keeps the earlier key until it comes up
  }
  if (heap_[0] == &d) rearm();
}

void DeadlineGroup::remove(Deadline& d) {
  pop_at(d.slot_);
  // The timer may be left waiting for the removed key: its wake-up finds
  // nothing due and waits for the next one. With no member left, the wait
  // is cancelled so the io_context holds no work for the group.
  if (heap_.empty() && waiting_ && timer_) timer_->cancel();
}

void DeadlineGroup::pop_at(size_t i) {
  Deadline* gone = heap_[i];
  gone->slot_ = Deadline::kNotQueued;
  Deadline* last = heap_.back();
  heap_.pop_back();
  if (last == gone) return;
  place(i, last);
  if (i > 0 && last->key_ < heap_[(i - 1) / 2]->key_) {
    sift_up(i);
  } else {
    sift_down(i);
  }
}

void DeadlineGroup::sift_up(size_t i) {
  Deadline* d = heap_[i];
  while (i > 0) {
    const size_t parent = (i - 1) / 2;
    if (!(d->key_ < heap_[parent]->key_)) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, d);
}

void DeadlineGroup::sift_down(size_t i) {
  Deadline* d = heap_[i];
  const size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->key_ < heap_[child]->key_) ++child;
    if (!(heap_[child]->key_ < d->key_)) break;
    place(i, heap_[child]);
    i = child;
  }
  place(i, d);
}

void DeadlineGroup::fire_due() {
  const auto now = Clock::now();
  while (!heap_.empty() && heap_[0]->key_ <= now) {
    Deadline& d = *heap_[0];
    if (d.at_ <= now) {
      pop_at(0);
      d.fire();
    } else if (d.at_ == Clock::time_point::max()) {
      pop_at(0);  // disarmed meanwhile
    } else {
      d.key_ = d.at_;  // moved later meanwhile
      sift_down(0);
    }
  }
}

void DeadlineGroup::rearm() {
  if (!timer_ || heap_.empty()) return;
  const auto top = heap_[0]->key_;
  if (waiting_ && !(top < waiting_for_)) return;
  waiting_for_ = top;
  // With a wait under way this cancels it: its handler (on_wait) then
  // starts the wait for the new time.
  timer_->expires_at(top);
  if (waiting_) return;
  waiting_ = true;
  timer_->async_wait([self = self_](const boost::system::error_code&) {
    if (DeadlineGroup* g = *self) g->on_wait();
  });
}

void DeadlineGroup::on_wait() {
  waiting_ = false;
  waiting_for_ = Clock::time_point::max();
  fire_due();
  rearm();
}

}  // namespace sag::session
