#include "session/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>

#include "config/base/json_escape.h"

namespace sag::session {
namespace {

// Client bytes need not be UTF-8, but a JSON line must be (base::append_json_string).
using base::append_json_string;

constexpr size_t kFlushAt = 64 * 1024;             // a lane this full wakes the writer
constexpr size_t kMaxPending = 8 * 1024 * 1024;    // over all lanes
constexpr size_t kMinLaneCap = 1024 * 1024;
constexpr size_t kEntryHead = sizeof(int64_t) + sizeof(uint32_t);

template <class T>
void append_num(std::string& out, T v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Request paths are client bytes: keep the log one line per request and
// unambiguous to parse by escaping quotes, backslashes and controls as \xHH.
void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t plain = 0;  // start of the run of bytes copied as they are
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
      out.append(s.data() + plain, i - plain);
      const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      out.append(esc, sizeof esc);
      plain = i + 1;
    }
  }
  out.append(s.data() + plain, s.size() - plain);
}

// The date text up to the seconds changes once a second: formatted then,
// per thread and per format; each line patches in its milliseconds.
struct DateCache {
  int64_t second = INT64_MIN;
  size_t len = 0;
  char text[48];
};

enum class DateStyle { kText, kJson };

void append_date(std::string& out, std::chrono::system_clock::time_point t, DateStyle style) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  thread_local DateCache caches[2];
  DateCache& c = caches[style == DateStyle::kJson];
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const int64_t second = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const auto millis = static_cast<int>(ms - second * 1000);
  if (second != c.second) {
    std::tm tm{};
    const auto secs = static_cast<std::time_t>(second);
    gmtime_r(&secs, &tm);
    const int n =
        style == DateStyle::kText
            ? std::snprintf(c.text, sizeof c.text, " [%02d/%s/%04d:%02d:%02d:%02d.", tm.tm_mday,
                            kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec)
            : std::snprintf(c.text, sizeof c.text, "%04d-%02d-%02dT%02d:%02d:%02d.",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec);
    c.len = n > 0 ? static_cast<size_t>(n) : 0;
    c.second = second;
  }
  out.append(c.text, c.len);
  const char m[3] = {static_cast<char>('0' + millis / 100), static_cast<char>('0' + millis / 10 % 10),
                     static_cast<char>('0' + millis % 10)};
  out.append(m, sizeof m);
  out += style == DateStyle::kText ? "] " : "Z";
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
    : fd_(fd),
      owns_fd_(owns_fd),
      format_(format),
      lane_cap_(std::max(kMinLaneCap, kMaxPending / lanes_.size())) {
  if (fd_ >= 0) writer_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  if (writer_.joinable()) {
    {
      std::lock_guard lock(wake_mutex_);
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
    record.tcp ? format_tcp_json(record, line) : format_json(record, line);
  } else {
    record.tcp ? format_tcp_text(record, line) : format_text(record, line);
  }
  line += '\n';
  const auto len = static_cast<uint32_t>(line.size());
  char head[kEntryHead];
  std::memcpy(head + sizeof(int64_t), &len, sizeof len);
  Lane& lane = lanes_.local();
  bool flush_now = false;
  {
    std::lock_guard lock(lane.mutex);
    if (lane.pending.size() + kEntryHead + line.size() > lane_cap_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Stamped under the lock (see Lane).
    const int64_t done = std::chrono::steady_clock::now().time_since_epoch().count();
    std::memcpy(head, &done, sizeof done);
    lane.pending.append(head, kEntryHead);
    lane.pending += line;
    flush_now = lane.pending.size() >= kFlushAt;
  }
  // Once per 64 KiB of lines, not per request.
  if (flush_now && !flush_wanted_.exchange(true, std::memory_order_relaxed)) {
    std::lock_guard lock(wake_mutex_);
    wake_.notify_one();
  }
}

void AccessLog::collect(std::vector<std::string>& taken, std::vector<std::string>& carry,
                        bool all, std::string& out) {
  const int64_t cutoff = all ? std::numeric_limits<int64_t>::max()
                             : std::chrono::steady_clock::now().time_since_epoch().count();
  for (size_t i = 0; i < lanes_.size(); ++i) {
    taken[i].clear();
    {
      std::lock_guard lock(lanes_[i].mutex);
      taken[i].swap(lanes_[i].pending);
    }
    if (!carry[i].empty()) {  // held back last round: earlier than what came since
      carry[i] += taken[i];
      taken[i].swap(carry[i]);
      carry[i].clear();
    }
  }
  // Each lane is in completion order; merge them (k = workers + 1, small).
  thread_local std::vector<size_t> pos;
  pos.assign(taken.size(), 0);
  for (;;) {
    size_t best = taken.size();
    int64_t best_done = 0;
    for (size_t i = 0; i < taken.size(); ++i) {
      if (pos[i] >= taken[i].size()) continue;
      int64_t done;
      std::memcpy(&done, taken[i].data() + pos[i], sizeof done);
      if (done > cutoff) continue;
      if (best == taken.size() || done < best_done) {
        best = i;
        best_done = done;
      }
    }
    if (best == taken.size()) break;
    uint32_t len;
    std::memcpy(&len, taken[best].data() + pos[best] + sizeof(int64_t), sizeof len);
    out.append(taken[best].data() + pos[best] + kEntryHead, len);
    pos[best] += kEntryHead + len;
  }
  for (size_t i = 0; i < taken.size(); ++i)
    if (pos[i] < taken[i].size()) carry[i].assign(taken[i], pos[i]);
}

void AccessLog::write_out(const std::string& out) {
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::write(fd_, out.data() + off, out.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // nowhere to write: drop rather than spin
    off += static_cast<size_t>(n);
  }
}

void AccessLog::run() {
  std::vector<std::string> taken(lanes_.size());
  std::vector<std::string> carry(lanes_.size());
  std::string out;
  for (;;) {
    bool stopping;
    {
      std::unique_lock lock(wake_mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(50), [this] {
        return stop_ || flush_wanted_.load(std::memory_order_relaxed);
      });
      stopping = stop_;
    }
    flush_wanted_.store(false, std::memory_order_relaxed);
    out.clear();
    collect(taken, carry, stopping, out);
    write_out(out);
    // Workers have stopped before the log is destroyed: what they wrote
    // is in the lanes now, and this last round took it.
    if (stopping) return;
  }
}

namespace {

// What every line starts with: "CLIENT:PORT [DATE] LISTENER BACKEND/SERVER ".
void append_text_prefix(const AccessRecord& r, std::string& out) {
  out += r.client_ip;
  out += ':';
  append_num(out, r.client_port);
  append_date(out, r.start, DateStyle::kText);
  out += r.listener;
  out += ' ';
  out += r.backend.empty() ? "-" : r.backend;
  out += '/';
  out += r.server.empty() ? "-" : r.server;
  out += ' ';
}

// {"time", "client_ip", "client_port", "listener", "backend", "server" (the
// object left open).
void append_json_prefix(const AccessRecord& r, std::string& out) {
  out += "{\"time\":\"";
  append_date(out, r.start, DateStyle::kJson);
  out += "\",\"client_ip\":";
  append_json_string(out, r.client_ip);
  out += ",\"client_port\":";
  append_num(out, r.client_port);
  out += ",\"listener\":";
  append_json_string(out, r.listener);
  out += ",\"backend\":";
  append_json_string(out, r.backend.empty() ? "-" : r.backend);
  out += ",\"server\":";
  append_json_string(out, r.server.empty() ? "-" : r.server);
}

void append_json_number(std::string& out, const char* key, int64_t v) {
  out += ",\"";
  out += key;
  out += "\":";
  append_num(out, v);
}

}  // namespace

void AccessLog::format_text(const AccessRecord& r, std::string& out) {
  append_text_prefix(r, out);
  for (int64_t t : {r.tq, r.tw, r.tc, r.tr}) {
    append_num(out, t);
    out += '/';
  }
  append_num(out, r.tt);
  out += ' ';
  append_num(out, r.status);
  out += ' ';
  append_num(out, r.bytes);
  out += ' ';
  out += r.persist.empty() ? "-" : r.persist;
  out += ' ';
  append_num(out, r.retries);
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
  append_json_prefix(r, out);
  const std::pair<const char*, int64_t> times[] = {
      {"tq", r.tq}, {"tw", r.tw}, {"tc", r.tc}, {"tr", r.tr}, {"tt", r.tt}};
  for (const auto& [k, v] : times) append_json_number(out, k, v);
  out += ",\"status\":";
  append_num(out, r.status);
  out += ",\"bytes\":";
  append_num(out, r.bytes);
  out += ",\"persist\":";
  append_json_string(out, r.persist.empty() ? "-" : r.persist);
  out += ",\"retries\":";
  append_num(out, r.retries);
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

// CLIENT:PORT [DATE] LISTENER BACKEND/SERVER Tw/Tc/Tt BYTES_IN BYTES_OUT PERSIST TERMINATION "TCP"
void AccessLog::format_tcp_text(const AccessRecord& r, std::string& out) {
  append_text_prefix(r, out);
  append_num(out, r.tw);
  out += '/';
  append_num(out, r.tc);
  out += '/';
  append_num(out, r.tt);
  out += ' ';
  append_num(out, r.bytes_in);
  out += ' ';
  append_num(out, r.bytes);
  out += ' ';
  out += r.persist.empty() ? "-" : r.persist;
  out += ' ';
  out += r.termination;
  out += " \"TCP\"";
}

void AccessLog::format_tcp_json(const AccessRecord& r, std::string& out) {
  append_json_prefix(r, out);
  const std::pair<const char*, int64_t> times[] = {{"tw", r.tw}, {"tc", r.tc}, {"tt", r.tt}};
  for (const auto& [k, v] : times) append_json_number(out, k, v);
  out += ",\"bytes_in\":";
  append_num(out, r.bytes_in);
  out += ",\"bytes_out\":";
  append_num(out, r.bytes);
  out += ",\"persist\":";
  append_json_string(out, r.persist.empty() ? "-" : r.persist);
  out += ",\"termination\":";
  append_json_string(out, r.termination);
  out += ",\"protocol\":\"TCP\"}";
}

}  // namespace sag::session
