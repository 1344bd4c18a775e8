// One hiredis 0.14 async context driven by an Asio io_context: the event
// adapter hiredis lacks (its ev.addRead/delRead/addWrite/delWrite/cleanup
// hooks mapped onto a posix::stream_descriptor that is released, never
// closed, on cleanup: the fd belongs to hiredis), plus the command timeouts
// 0.14 lacks. Used by RedisClient only.
//
// Threads: confined to the io_context's thread (one thread runs it). Not
// thread-safe.
//
// Lifetime: made by create() (shared_ptr: pending Asio waits and posted
// notifications hold a reference). The owner calls close() before dropping
// its reference; a connection destroyed while open is freed without its
// callbacks being run.
//
// hiredis facts this leans on (STACK.md): a failed connect frees the context
// without onDisconnect (so closing is detected by the cleanup hook, which
// every free calls); pending callbacks get a NULL reply when the context is
// freed; a subscribed context accepts only (UN)SUBSCRIBE, so a connection is
// either for commands or for subscribe().
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "affinity/redis_client.h"

struct redisAsyncContext;
struct redisReply;

namespace sag::affinity {

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  using ReplyFn = std::function<void(boost::system::error_code, const RedisReply&)>;
  using MessageFn = std::function<void(std::string_view channel, std::string_view payload)>;
  // Why the connection ended: ec (connection_refused, connection_reset,
  // timed_out, ...) and hiredis' text.
  using ClosedFn = std::function<void(boost::system::error_code, const std::string& reason)>;

  // `timeout` bounds each command from the moment it is queued.
  static std::shared_ptr<RedisConnection> create(boost::asio::io_context& io,
                                                 std::chrono::milliseconds timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Starts connecting to host:port (a numeric address). Commands may be
  // queued at once; they go out once connected. `closed` runs (posted) once
  // when the connection ends by itself (refused, reset, timeout, protocol
  // error), never after close(). False when hiredis refuses at once (then
  // `error` says why and nothing runs).
  bool open(const std::string& host, uint16_t port, ClosedFn closed, std::string& error);
  bool is_open() const { return ac_ != nullptr; }

  // Queues a command. `done` runs exactly once, on the io thread: with the
  // reply (ec == {}; possibly a kError reply), or with an error and a kNil
  // reply when the connection ends first: timed_out (this command or one
  // before it timed out), connection_refused, connection_reset, or the ec
  // given to close(). Error completions are posted, never run inside the
  // call that caused them. `timeout` overrides the connection's.
  void command(const std::vector<std::string>& argv, ReplyFn done,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // SUBSCRIBE channels: each message goes to on_message (kept from the
  // first call; later calls may pass an empty one). Redis must confirm
  // every channel within the connection's timeout, or the connection ends
  // (timed_out); the fn given to on_confirmed() runs each time all the
  // channels asked for so far are confirmed. After this, the connection
  // takes no other command (hiredis).
  void subscribe(const std::vector<std::string>& channels, MessageFn on_message);
  void on_confirmed(std::function<void()> fn) { confirmed_fn_ = std::move(fn); }

  // Frees the context: pending commands complete (posted) with `ec`.
  // Idempotent; `closed` does not run.
  void close(boost::system::error_code ec);

 private:
  struct Pending {
    std::chrono::steady_clock::time_point deadline;
    ReplyFn done;
  };

  RedisConnection(boost::asio::io_context& io, std::chrono::milliseconds timeout);

  // hiredis hooks (privdata = this) and reply callbacks (ac->data = this).
  static void hook_add_read(void* p);
  static void hook_del_read(void* p);
  static void hook_add_write(void* p);
  static void hook_del_write(void* p);
  static void hook_cleanup(void* p);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_message(redisAsyncContext* ac, void* reply, void* privdata);

  void arm_read();
  void arm_write();
  void arm_timer();
  void on_timer();
  void handle_reply(redisReply* r);
  void handle_push(redisReply* r);
  void cleanup();
  // Ends the context because of `ec` (hiredis' own frees go through
  // cleanup() with the ec taken from the context's error).
  void end(boost::system::error_code ec);

  boost::asio::io_context& io_;
  const std::chrono::milliseconds timeout_;
  redisAsyncContext* ac_ = nullptr;
  boost::asio::posix::stream_descriptor fd_;
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
  std::chrono::steady_clock::time_point timer_at_{};
  bool want_read_ = false, want_write_ = false;
  bool read_waiting_ = false, write_waiting_ = false;
  bool destroying_ = false;
  bool closed_by_owner_ = false;
  // Set before a free we start, so NULL-reply callbacks know the reason.
  boost::system::error_code end_ec_;
  std::deque<Pending> pending_;
  std::vector<ReplyFn> failed_;  // collected during a free, completed after
  ClosedFn closed_;
  MessageFn message_fn_;
  std::function<void()> confirmed_fn_;
  size_t unconfirmed_ = 0;
  std::chrono::steady_clock::time_point subscribe_deadline_{};
};

}  // namespace sag::affinity
