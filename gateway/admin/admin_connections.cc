#include "gateway/admin/admin_connections.h"

namespace sag::gateway {

AdminConnections::Member::~Member() {
  if (set_) set_->leave(*this);
}

void AdminConnections::Member::waiting() {
  if (!set_) return;  // evicted or never admitted
  // To the back: it has waited for nothing yet.
  if (queued_) set_->dequeue(*this);
  set_->enqueue(*this);
}

void AdminConnections::Member::answering() {
  if (set_ && queued_) set_->dequeue(*this);
}

AdminConnections::Admission AdminConnections::admit(Member& m) {
  Admission result = Admission::kAdmitted;
  if (count_ >= limit_) {
    Member* victim = oldest_;
    if (!victim) return Admission::kRefused;
    leave(*victim);
    victim->evicted_ = true;
    victim->evict();
    result = Admission::kAdmittedByEviction;
  }
  m.set_ = this;
  ++count_;
  enqueue(m);
  return result;
}

void AdminConnections::enqueue(Member& m) {
  m.prev_ = newest_;
  m.next_ = nullptr;
  if (newest_) newest_->next_ = &m; else oldest_ = &m;
  newest_ = &m;
  m.queued_ = true;
}

void AdminConnections::dequeue(Member& m) {
  if (m.prev_) m.prev_->next_ = m.next_; else oldest_ = m.next_;
  if (m.next_) m.next_->prev_ = m.prev_; else newest_ = m.prev_;
  m.prev_ = m.next_ = nullptr;
  m.queued_ = false;
}

void AdminConnections::leave(Member& m) {
  if (m.queued_) dequeue(m);
  m.set_ = nullptr;
  --count_;
}

}  // namespace sag::gateway
