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
// hiredis facts this leans on (docs/dependencies.md): a failed connect frees the context
// without onDisconnect (so closing is detected by the cleanup hook, which
// every free calls); pending callbacks get a NULL reply when the context is
// freed; a subscribed context accepts only (UN)SUBSCRIBE, so a connection is
// either for commands or for subscribe().
//
// Every reply is read within RedisReplyLimits: one past them ends the
// connection like a reset (`closed` gets the limit's text as the reason).
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

#include "config/redis/redis_client.h"

struct redisAsyncContext;
struct redisReadTask;
struct redisReader;
struct redisReply;
struct redisReplyObjectFunctions;

namespace sag::redis {

// Bounds on one Redis reply, kept by a hiredis reader. Without them hiredis
// 0.14 believes any length a peer announces: `*2147483000` makes it calloc
// 17 GB of element pointers and, when the connection ends, walk all of
// them to free the elements (about 40 s of a core per reply); `$2147483000`
// makes it buffer whatever follows until that many bytes came. A peer that
// is not Redis, or a broken one, must cost a failed connection, no more.
//
// The limits are far above anything the gateway reads and low enough that
// a reply at the limit stays an affordable amount of memory. Its largest
// replies are a SCAN page (COUNT 1000: about 1000 affinity keys, each made
// from a session id the application set or a client address) and the
// script's answer for that page (2 short fields per key): under 1 MB for
// real session ids, 64 MiB only if keys averaged 64 KiB. Other values are
// server names, admin states and ticket keys. Per reply:
// - kMaxBytes: the string data of one reply, all its strings together, so
//   also its largest bulk string. Checked on the announced length, before
//   the bytes are buffered (check_buffered()).
// - kMaxElements: the array elements of one reply, all its arrays together,
//   checked on each array's announced count before anything is allocated
//   (1M elements cost about 70 MB of hiredis reply objects, as much again
//   once copied into RedisReply).
// - kMaxDepth: arrays within arrays (ROLE, the deepest reply used, has 3
//   levels). hiredis itself refuses more than 8; nesting costs nothing, this
//   only says what a reply to us may look like.
// - kMaxLine: a simple string, error or integer, and a length line, still
//   without its CRLF (Redis keeps error texts short: it truncates
//   arguments it quotes to 128 bytes).
//
// Threads: the reader's (the connection's io thread).
class RedisReplyLimits {
 public:
  static constexpr size_t kMaxBytes = size_t{64} << 20;     // 64 MiB
  static constexpr size_t kMaxElements = size_t{1} << 20;   // 1M
  static constexpr int kMaxDepth = 6;
  static constexpr size_t kMaxLine = size_t{64} << 10;      // 64 KiB

  RedisReplyLimits();
  ~RedisReplyLimits();
  RedisReplyLimits(const RedisReplyLimits&) = delete;
  RedisReplyLimits& operator=(const RedisReplyLimits&) = delete;

  // Makes `reader` build its replies through checked versions of its own
  // functions: a string or an array past the limits is refused (the reader
  // then fails with hiredis' "Out of memory"; refused() has the real
  // reason). `this` becomes the reader's privdata and must outlive the
  // reader. Once per reader.
  void attach(redisReader* reader);
  // Also refuses a reply that nobody asked for on `ac` (no command waiting
  // and not subscribed): hiredis 0.14 aborts the process on one
  // (an assert in redisProcessCallbacks). `ac` must outlive the reader.
  void guard_unsolicited(const redisAsyncContext* ac) { ac_ = ac; }
  // To run each time data was fed to `reader` and it parsed what it could
  // (redisAsyncHandleRead: at most 16 KiB a time, so the buffer grows by
  // no more between two checks). False when the reply in progress already
  // breaks a limit (a bulk string announced too long, a line too long): the
  // caller must drop the connection; refused() says why.
  bool check_buffered(const redisReader* reader);
  // Why a reply was refused; empty while none was.
  const std::string& refused() const { return refused_; }

 private:
  static void* create_string(const redisReadTask* task, char* str, size_t len);
  static void* create_array(const redisReadTask* task, int elements);
  static void* create_integer(const redisReadTask* task, long long value);
  static void* create_nil(const redisReadTask* task);
  // At the root of a reply: resets the budgets; false (refused) when the
  // reply is one nobody asked for.
  bool begin_reply();
  void* refuse(std::string why);

  const redisAsyncContext* ac_ = nullptr;
  const redisReplyObjectFunctions* base_ = nullptr;      // the reader's own
  std::unique_ptr<redisReplyObjectFunctions> checked_;  // installed in its place
  // Of the reply being read: reset when its root object is made.
  size_t bytes_ = 0;
  size_t elements_ = 0;
  std::string refused_;
};

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
  // Attached to the context's reader: it outlives the context (members go
  // after the destructor's free).
  RedisReplyLimits limits_;
  std::deque<Pending> pending_;
  std::vector<ReplyFn> failed_;  // collected during a free, completed after
  ClosedFn closed_;
  MessageFn message_fn_;
  std::function<void()> confirmed_fn_;
  size_t unconfirmed_ = 0;
  std::chrono::steady_clock::time_point subscribe_deadline_{};
};

}  // namespace sag::redis
