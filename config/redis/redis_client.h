// The process's link to Redis (`affinity_store.type: redis`, docs/behaviour.md#persistence): one
// thread and io_context of its own, a command connection, a separate
// connection for SUBSCRIBE (hiredis forbids other commands on a subscribed
// context), and with `redis.sentinel` the sentinels that name the master.
// Shared by the RedisAffinityStore, SharedAdminState and TicketKeyShare;
// it knows nothing of them (library sag_redis, below affinity and tls).
//
// Connecting: directly to `address`, or to the master that
// `SENTINEL get-master-addr-by-name <master>` returns (first sentinel that
// answers), then AUTH (when a password is set), SELECT db, and with
// sentinels ROLE, which must say "master". The client is up once that
// handshake is done and every channel subscribed so far is subscribed again
// on the subscriber connection (so on_state(true) never precedes the
// subscriptions: a resync started from it misses no message).
//
// Failure (refused, reset, a command past `timeout`, a READONLY reply, a
// reply past RedisReplyLimits (redis_connection.h: 64 MiB of strings, 1M
// elements, 6 levels deep), a sentinel's +switch-master): both connections
// are dropped, pending commands fail, and a new attempt follows after a
// backoff of 100 ms doubling to 1 s (sentinels are asked again each
// time). A command timeout ends the connection: replies come in order, so a
// late one would block every later command behind it. One log line per
// state change (up, down, first failure while down), never one per failed
// attempt.
//
// Threads: every method is thread-safe unless noted. Callbacks (command
// replies, messages, state changes) run on the client thread; they must
// not block, and must not call stop() (it joins that thread).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "config/endpoint.h"
#include "config/gateway_config.h"

namespace sag::redis {

class RedisConnection;

// An owned copy of a hiredis reply.
struct RedisReply {
  enum class Type : uint8_t { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;                   // kString, kStatus, kError
  long long integer = 0;             // kInteger
  std::vector<RedisReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
};

class RedisClient {
 public:
  using Callback = std::function<void(boost::system::error_code, const RedisReply&)>;
  using LogSink = std::function<void(bool error, const std::string& line)>;

  // Connects directly to cfg.address, or asks cfg.sentinel_addresses for
  // cfg.sentinel_master (SENTINEL get-master-addr-by-name; follows a
  // failover: +switch-master, or asked again after a disconnect). AUTH with
  // cfg.password when set, SELECT cfg.db. `log` gets the state changes
  // (error = true for losses and failures); it may be empty.
  RedisClient(const config::RedisConfig& cfg, LogSink log);
  ~RedisClient();  // stops
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Starts the thread and returns at once; connecting happens in the
  // background. Once only.
  void start();
  // Idempotent; closes the connections, runs the on_stop() functions and
  // joins the thread. Callbacks of commands still pending run with
  // operation_aborted if they can before the thread ends; work posted after
  // that is dropped, never run.
  void stop();
  // True once the client is up (see above), false when `limit` passed first.
  bool wait_connected(std::chrono::milliseconds limit);
  bool connected() const { return up_.load(std::memory_order_acquire); }

  // The callback runs on the client thread, exactly once unless the client
  // is stopped first: ec set on timeout (timed_out), not connected
  // (not_connected), connection loss (connection_reset / connection_refused)
  // or stop (operation_aborted), the reply then kNil. A Redis error reply is
  // ec == {} with type kError.
  void command(std::vector<std::string> argv, Callback done);
  // Subscribes on the separate connection; survives reconnects (subscribed
  // again each time). on_message runs on the client thread.
  void subscribe(std::string channel, std::function<void(std::string_view payload)> on_message);
  // fn(true) each time the client comes up (after AUTH/SELECT and the
  // subscriptions), fn(false) when it goes down, on the client thread.
  // Best registered before start(); registered later while up, fn(true)
  // runs at once (posted).
  void on_state(std::function<void(bool up)> fn);
  // fn() runs once on the client thread when stop() shuts the client down,
  // after the connections closed (their commands failed) and before the
  // thread ends: where users cancel their own timers on io(), so none stays
  // armed past the thread. Never runs when the client was not started.
  void on_stop(std::function<void()> fn);

  // To post work onto the client thread.
  boost::asio::io_context& io() { return io_; }
  // Commands failed: timeouts, disconnects, refused (sent while down).
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  enum class State : uint8_t { kIdle, kConnecting, kUp, kBackoff, kStopped };

  void do_command(std::vector<std::string>& argv, Callback& done);
  std::chrono::milliseconds handshake_timeout() const;
  void attempt();
  // Asks the sentinels in turn (from the last one that answered); `why`
  // collects the failures for the log line.
  void ask_sentinel(size_t tried, std::string why);
  void watch_sentinel(size_t i);
  void connect_master(const config::Endpoint& ep);
  void open_subscriber();
  void set_up();
  // Drops the connections, reports the loss once, retries after the backoff
  // (at once when `now`). Ignored when `gen` is stale (an older attempt's
  // late callback).
  void fail(uint64_t gen, const std::string& reason, bool now = false);
  void schedule_attempt(std::chrono::milliseconds delay);
  void log(bool error, const std::string& line) {
    if (log_) log_(error, line);
  }
  void shutdown();

  const config::RedisConfig cfg_;
  const LogSink log_;
  std::optional<config::Endpoint> direct_;            // without sentinels
  std::vector<config::Endpoint> sentinels_;

  boost::asio::io_context io_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::once_flag started_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> up_{false};
  std::atomic<uint64_t> errors_{0};
  std::mutex up_mu_;
  std::condition_variable up_cv_;

  // Client thread only below.
  State state_ = State::kIdle;
  uint64_t gen_ = 0;  // bumped by each attempt and each failure
  std::chrono::milliseconds backoff_{100};
  bool down_reported_ = false;  // the current outage was logged
  std::string down_reason_;     // ... with this "address: reason"
  std::string master_text_;  // "127.0.0.1:6379" of the master in use or last tried
  std::optional<config::Endpoint> master_;  // from the sentinels
  config::Endpoint current_;                // being connected to / in use
  size_t sentinel_next_ = 0;
  std::shared_ptr<RedisConnection> cmd_;
  std::shared_ptr<RedisConnection> sub_;
  std::shared_ptr<RedisConnection> sentinel_query_;
  std::shared_ptr<RedisConnection> sentinel_watch_;
  boost::asio::steady_timer retry_timer_{io_};
  boost::asio::steady_timer watch_timer_{io_};
  std::map<std::string, std::vector<std::function<void(std::string_view)>>> channels_;
  std::vector<std::function<void(bool)>> state_fns_;
  std::vector<std::function<void()>> stop_fns_;
};

}  // namespace sag::redis
