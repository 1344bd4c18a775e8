// The access log (docs/behaviour.md#access-log): one line per request, written after the
// response ends. Each worker formats its line (no allocation: a reused
// per-thread buffer, integers by to_chars, the date text cached per second)
// and appends it to its own lane (base::Sharded), whose lock only the
// writer thread ever contends for, at most every 50 ms: workers share
// nothing per request. The writer takes every lane at once and writes their
// lines merged in completion order, so a slow disk or a blocked stdout pipe
// never stalls a worker. Past a bound per lane the newest lines are dropped
// and counted rather than buffered without limit.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/base/worker_shard.h"
#include "config/gateway_config.h"

namespace sag::session {

struct AccessRecord {
  std::string_view client_ip;
  uint16_t client_port = 0;
  std::chrono::system_clock::time_point start;  // accept or first byte
  std::string_view listener;
  std::string_view backend;  // "-" when none
  std::string_view server;   // "-" when the gateway answered itself
  // Milliseconds; -1 where the phase was not reached.
  int64_t tq = -1, tw = -1, tc = -1, tr = -1, tt = -1;
  unsigned status = 0;
  uint64_t bytes = 0;
  std::string_view persist;  // "new", "cookie-hit", ... or "-"
  uint32_t retries = 0;
  std::string_view method;
  std::string_view path;
  std::string_view protocol;  // "HTTP/1.1"
  std::string_view termination = "ok";  // how it ended (session/gateway_error.h)
  // A TCP connection (SPEC §6): Tw/Tc/Tt, `bytes_in` from the client and
  // `bytes` to it, no status, request or retries.
  bool tcp = false;
  uint64_t bytes_in = 0;
};

class AccessLog {
 public:
  // nullptr with `error` set when the file can't be opened. A config with an
  // empty path gives a log whose enabled() is false.
  static std::unique_ptr<AccessLog> open(const config::AccessLogConfig& config,
                                         std::string& error);
  ~AccessLog();  // writes out what is buffered

  bool enabled() const { return fd_ >= 0; }
  // Thread-safe; never blocks on I/O.
  void write(const AccessRecord& record);
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // Formats into `out` (appends); exposed for tests.
  static void format_text(const AccessRecord& r, std::string& out);
  static void format_json(const AccessRecord& r, std::string& out);
  static void format_tcp_text(const AccessRecord& r, std::string& out);
  static void format_tcp_json(const AccessRecord& r, std::string& out);

 private:
  // One worker's lines not yet written: each as [8-byte completion time,
  // steady ns][4-byte length][bytes], in the order the worker wrote them.
  // The time is read under the lane's lock, so a lane is in time order and
  // a line stamped before a collect began was in its lane when it was taken.
  struct Lane {
    std::mutex mutex;
    std::string pending;  // guarded by mutex
  };

  AccessLog(int fd, bool owns_fd, config::LogFormat format);
  void run();
  // Takes every lane's lines (swapped with `taken`, so capacities are kept
  // on both sides) and appends them to `out` merged by completion time:
  // those stamped before the collect began (all of them when `all`); the
  // later ones wait in `carry` for the next round, since an earlier line
  // may still have reached a lane taken before them.
  void collect(std::vector<std::string>& taken, std::vector<std::string>& carry, bool all,
               std::string& out);
  void write_out(const std::string& out);

  const int fd_;
  const bool owns_fd_;
  const config::LogFormat format_;
  base::Sharded<Lane> lanes_;
  size_t lane_cap_;
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by wake_mutex_
  std::atomic<bool> flush_wanted_{false};
  std::atomic<uint64_t> dropped_{0};
  std::thread writer_;
};

}  // namespace sag::session
