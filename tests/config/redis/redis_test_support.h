// Real redis-server processes for the Redis unit tests: each on a free
// 127.0.0.1 port, without persistence, in a temporary directory, killed
// with the test (and with the test process: PR_SET_PDEATHSIG). A missing
// redis-server fails the test, never skips it. RedisTest is the fixture
// with one such server; redis_config() the client config pointing at it.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/redis/redis_client.h"

namespace sag::redis::testing {

inline std::string find_redis_server() {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    const size_t colon = p.find(':', start);
    const std::string dir = p.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

inline uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A synchronous redis-cli of sorts: one command on a fresh connection.
inline std::optional<RedisReply> sync_command(uint16_t port, const std::vector<std::string>& argv,
                                              const std::string& password = "") {
  timeval tv{2, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return std::nullopt;
  }
  redisSetTimeout(c, tv);
  auto run = [&](const std::vector<std::string>& args) -> std::optional<RedisReply> {
    std::vector<const char*> a;
    std::vector<size_t> l;
    for (const auto& s : args) {
      a.push_back(s.data());
      l.push_back(s.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(a.size()), a.data(), l.data()));
    if (!r) return std::nullopt;
    std::function<RedisReply(const redisReply*)> conv = [&](const redisReply* x) {
      RedisReply out;
      switch (x->type) {
        case REDIS_REPLY_STRING: out.type = RedisReply::Type::kString; out.str.assign(x->str, x->len); break;
        case REDIS_REPLY_STATUS: out.type = RedisReply::Type::kStatus; out.str.assign(x->str, x->len); break;
        case REDIS_REPLY_ERROR: out.type = RedisReply::Type::kError; out.str.assign(x->str, x->len); break;
        case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::kInteger; out.integer = x->integer; break;
        case REDIS_REPLY_ARRAY:
          out.type = RedisReply::Type::kArray;
          for (size_t i = 0; i < x->elements; ++i) out.elements.push_back(conv(x->element[i]));
          break;
        default: break;
      }
      return out;
    };
    RedisReply out = conv(r);
    freeReplyObject(r);
    return out;
  };
  std::optional<RedisReply> out;
  if (!password.empty()) out = run({"AUTH", password});
  if (password.empty() || (out && out->type != RedisReply::Type::kError)) out = run(argv);
  redisFree(c);
  return out;
}

class RedisServer {
 public:
  // `extra`: more redis-server arguments (e.g. {"--requirepass", "pw"}).
  explicit RedisServer(std::vector<std::string> extra = {}, bool sentinel = false)
      : extra_(std::move(extra)), sentinel_(sentinel) {
    binary_ = find_redis_server();
    char tmpl[] = "/tmp/sag-redis-XXXXXX";
    dir_ = ::mkdtemp(tmpl) ? tmpl : "/tmp";
    port_ = free_port();
  }
  ~RedisServer() {
    kill();
    std::error_code ec;
    if (dir_ != "/tmp") std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool available() const { return !binary_.empty(); }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }

  // Starts (again, on the same port) and waits until it answers PING.
  bool start(std::chrono::milliseconds wait = std::chrono::seconds(10)) {
    if (binary_.empty() || pid_ > 0) return false;
    std::vector<std::string> args{binary_};
    if (sentinel_) {
      args.push_back(dir_ + "/sentinel.conf");
      args.push_back("--sentinel");
    }
    for (const std::string& a : std::vector<std::string>{"--port", std::to_string(port_), "--bind", "127.0.0.1",
                                                         "--dir", dir_, "--logfile", dir_ + "/redis.log"})
      args.push_back(a);
    if (!sentinel_)
      for (const std::string& a : std::vector<std::string>{"--save", "", "--appendonly", "no"}) args.push_back(a);
    args.insert(args.end(), extra_.begin(), extra_.end());
    // Built before fork(): the child of a threaded process only execs.
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execv(binary_.c_str(), argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = sync_command(port_, {"PING"}, password_);
      if (r && (r->type == RedisReply::Type::kStatus || r->type == RedisReply::Type::kError)) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // SIGKILL: gone at once, its data with it (no persistence).
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { if (pid_ > 0) ::kill(pid_, SIGSTOP); }
  void resume() { if (pid_ > 0) ::kill(pid_, SIGCONT); }
  void set_password(std::string pw) { password_ = std::move(pw); }

  std::optional<RedisReply> cli(const std::vector<std::string>& argv) const {
    return sync_command(port_, argv, password_);
  }

  // For a sentinel: writes sentinel.conf watching `master` as `name`.
  void write_sentinel_conf(const std::string& name, uint16_t master_port, int down_after_ms = 500,
                           int failover_timeout_ms = 2000) {
    std::ofstream f(dir_ + "/sentinel.conf");
    f << "sentinel monitor " << name << " 127.0.0.1 " << master_port << " 1\n"
      << "sentinel down-after-milliseconds " << name << " " << down_after_ms << "\n"
      << "sentinel failover-timeout " << name << " " << failover_timeout_ms << "\n"
      << "sentinel parallel-syncs " << name << " 1\n";
  }

 private:
  std::vector<std::string> extra_;
  bool sentinel_;
  std::string binary_;
  std::string dir_;
  std::string password_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// A client config for `server`: its address, a 200 ms command timeout and
// `prefix` as the key prefix.
inline config::RedisConfig redis_config(const RedisServer& server, const std::string& prefix = "gw:") {
  config::RedisConfig c;
  c.address = server.address();
  c.timeout = config::Duration(200);
  c.key_prefix = prefix;
  return c;
}

// One redis-server per test, as server_: the test fails when redis-server
// is not installed; started in SetUp unless the fixture is built with
// start = false (tests that start it themselves, or never).
class RedisTest : public ::testing::Test {
 protected:
  explicit RedisTest(bool start = true) : start_(start) {}
  void SetUp() override {
    ASSERT_TRUE(server_.available()) << "redis-server not found on PATH (Debian package redis-server)";
    if (start_) {
      ASSERT_TRUE(server_.start());
    }
  }
  // A command straight to server_; a kError reply when there was none.
  RedisReply cli(const std::vector<std::string>& argv) const {
    if (auto r = server_.cli(argv)) return *r;
    RedisReply none;
    none.type = RedisReply::Type::kError;
    none.str = "test: no reply";
    return none;
  }

  RedisServer server_;

 private:
  bool start_;
};

// Polls `pred` every 5 ms until true or `limit`; true when it became true.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace sag::redis::testing
