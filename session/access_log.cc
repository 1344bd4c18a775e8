#include "session/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "config/base/json_escape.h"

namespace sag::session {
namespace {

// Client bytes need not be UTF-8, but a JSON line must be (base::append_json_string).
using base::append_json_string;

constexpr size_t kFlushAt = 64 * 1024;
constexpr size_t kMaxPending = 8 * 1024 * 1024;

void append_int(std::string& out, int64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  out.append(buf, static_cast<size_t>(n));
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v));
  out.append(buf, static_cast<size_t>(n));
}

// Request paths are client bytes: keep the log one line per request and
// unambiguous to parse by escaping quotes, backslashes and controls.
void append_escaped(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
}

void split_time(std::chrono::system_clock::time_point t, std::tm& tm, int& millis) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  millis = static_cast<int>(ms % 1000);
  gmtime_r(&secs, &tm);
}

}  // namespace

std::unique_ptr<AccessLog> AccessLog::open(const config::AccessLogConfig& config,
                                           std::string& error) {
  if (config.path.empty()) return std::unique_ptr<AccessLog>(new AccessLog(-1, false, config.format));
  if (config.path == "-") return std::unique_ptr<AccessLog>(new AccessLog(1, false, config.format));
  int fd = ::open(config.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = config.path + ": " + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<AccessLog>(new AccessLog(fd, true, config.format));
}

AccessLog::AccessLog(int fd, bool owns_fd, config::LogFormat format)
    : fd_(fd), owns_fd_(owns_fd), format_(format) {
  if (fd_ >= 0) writer_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  if (writer_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    writer_.join();
  }
  if (owns_fd_) ::close(fd_);
}

void AccessLog::write(const AccessRecord& record) {
  if (fd_ < 0) return;
  // Formatting happens outside the lock; the buffer is reused per thread.
  thread_local std::string line;
  line.clear();
  if (format_ == config::LogFormat::kJson) {
    format_json(record, line);
  } else {
    format_text(record, line);
  }
  line += '\n';
  bool flush_now = false;
  {
    std::lock_guard lock(mutex_);
    if (pending_.size() + line.size() > kMaxPending) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending_ += line;
    flush_now = pending_.size() >= kFlushAt;
  }
  if (flush_now) wake_.notify_one();
}

void AccessLog::run() {
  std::string out;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, std::chrono::milliseconds(50),
                   [this] { return stop_ || pending_.size() >= kFlushAt; });
    out.swap(pending_);
    const bool stopping = stop_;
    lock.unlock();
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = ::write(fd_, out.data() + off, out.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // nowhere to write: drop rather than spin
      off += static_cast<size_t>(n);
    }
    out.clear();
    lock.lock();
    if (stopping && pending_.empty()) return;
  }
}

void AccessLog::format_text(const AccessRecord& r, std::string& out) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  int millis = 0;
  split_time(r.start, tm, millis);
  char date[64];
  std::snprintf(date, sizeof date, " [%02d/%s/%04d:%02d:%02d:%02d.%03d] ", tm.tm_mday,
                kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  out += r.client_ip;
  out += ':';
  append_int(out, r.client_port);
  out += date;
  out += r.listener;
  out += ' ';
  out += r.backend.empty() ? "-" : r.backend;
  out += '/';
  out += r.server.empty() ? "-" : r.server;
  out += ' ';
  for (int64_t t : {r.tq, r.tw, r.tc, r.tr}) {
    append_int(out, t);
    out += '/';
  }
  append_int(out, r.tt);
  out += ' ';
  append_int(out, r.status);
  out += ' ';
  append_uint(out, r.bytes);
  out += ' ';
  out += r.persist.empty() ? "-" : r.persist;
  out += ' ';
  append_int(out, r.retries);
  out += " \"";
  append_escaped(out, r.method);
  out += ' ';
  append_escaped(out, r.path);
  out += ' ';
  out += r.protocol;
  out += "\" ";
  out += r.termination;
}

void AccessLog::format_json(const AccessRecord& r, std::string& out) {
  std::tm tm{};
  int millis = 0;
  split_time(r.start, tm, millis);
  char date[48];
  std::snprintf(date, sizeof date, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  out += "{\"time\":\"";
  out += date;
  out += "\",\"client_ip\":";
  append_json_string(out, r.client_ip);
  out += ",\"client_port\":";
  append_int(out, r.client_port);
  out += ",\"listener\":";
  append_json_string(out, r.listener);
  out += ",\"backend\":";
  append_json_string(out, r.backend.empty() ? "-" : r.backend);
  out += ",\"server\":";
  append_json_string(out, r.server.empty() ? "-" : r.server);
  const std::pair<const char*, int64_t> times[] = {
      {"tq", r.tq}, {"tw", r.tw}, {"tc", r.tc}, {"tr", r.tr}, {"tt", r.tt}};
  for (const auto& [k, v] : times) {
    out += ",\"";
    out += k;
    out += "\":";
    append_int(out, v);
  }
  out += ",\"status\":";
  append_int(out, r.status);
  out += ",\"bytes\":";
  append_uint(out, r.bytes);
  out += ",\"persist\":";
  append_json_string(out, r.persist.empty() ? "-" : r.persist);
  out += ",\"retries\":";
  append_int(out, r.retries);
  out += ",\"method\":";
  append_json_string(out, r.method);
  out += ",\"path\":";
  append_json_string(out, r.path);
  out += ",\"protocol\":";
  append_json_string(out, r.protocol);
  out += ",\"termination\":";
  append_json_string(out, r.termination);
  out += '}';
}

}  // namespace sag::session
