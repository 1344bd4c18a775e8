// The admin listener's bound on open connections, and who gives way when it
// is reached.
//
// Policy. At most `limit` connections are open. A connection is *waiting*
// from its accept, or the end of its previous response, until its request
// (head and body) has arrived; it is *answering* while its response is
// written. When a new connection arrives at the limit, the connection that
// has been waiting longest is closed to make room for it; the newcomer is
// refused only when every open connection is answering (which the write
// timeout bounds).
//
// Why: whatever holds the slots can keep /healthz from answering, and a
// load balancer or keepalived in front would then take a healthy gateway
// out. Refusing newcomers hands the listener to whoever came first (200
// idle or slowloris connections), until they time out. Closing the
// longest-waiting connection instead costs an idle keep-alive client a
// reconnect, and a client that trickles its request the connection it was
// abusing; a probe, which opens a new connection and sends its request at
// once, always gets through, since only a flood of more than `limit` new
// connections between its accept and its last request byte could push it
// out. A bound per client address would not help: the admin listener
// usually binds loopback, where the probe and a flood share 127.0.0.1.
//
// Single-threaded (the admin thread): no locks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sag::gateway {

class AdminConnections {
 public:
  // The part of a connection the set sees: the connection derives from it,
  // and its destruction takes it out of the set.
  class Member {
   public:
    Member() = default;
    Member(const Member&) = delete;
    Member& operator=(const Member&) = delete;
    virtual ~Member();

    // Waiting for (or reading) a request: may be evicted, after every
    // member that has been waiting longer.
    void waiting();
    // Writing a response: never evicted.
    void answering();
    // Evicted by the set: the connection should end without answering.
    bool evicted() const { return evicted_; }

   protected:
    // Makes the connection end soon (e.g. shuts its socket down and cancels
    // its operations); it no longer counts against the limit from now on.
    // Called at most once, from admit(), on a waiting member.
    virtual void evict() = 0;

   private:
    friend class AdminConnections;
    AdminConnections* set_ = nullptr;  // while counted
    Member* prev_ = nullptr;           // in the waiting queue, oldest first
    Member* next_ = nullptr;
    bool queued_ = false;
    bool evicted_ = false;
  };

  enum class Admission {
    kAdmitted,
    kAdmittedByEviction,  // the longest-waiting member was evicted for it
    kRefused,             // every member is answering
  };

  explicit AdminConnections(size_t limit) : limit_(limit) {}
  // Every member must have left (been destroyed) first.
  ~AdminConnections() = default;
  AdminConnections(const AdminConnections&) = delete;
  AdminConnections& operator=(const AdminConnections&) = delete;

  // A connection just accepted: counts `m` as waiting (the newest) unless
  // refused. `m` must not be a member already.
  Admission admit(Member& m);

  size_t size() const { return count_; }  // counted members (evicted ones are not)
  size_t limit() const { return limit_; }

 private:
  void enqueue(Member& m);
  void dequeue(Member& m);
  void leave(Member& m);

  size_t limit_;
  size_t count_ = 0;
  Member* oldest_ = nullptr;
  Member* newest_ = nullptr;
};

}  // namespace sag::gateway
