// RedisReplyLimits (config/redis/redis_connection.h), on a bare hiredis reader
// and through a RedisClient: a peer announcing a huge array or bulk string,
// or sending an endless line, costs one failed connection (reported at
// once, with the reason, then retried with backoff), never a core for a
// minute, hundreds of MB, or a slow stop. Legitimate large replies from a
// real redis-server still pass.
#include "config/redis/redis_connection.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "config/redis/redis_client.h"
#include "tests/config/redis/redis_test_support.h"

namespace sag::redis {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::eventually;
using testing::redis_config;
using Type = RedisReply::Type;

// ------------------------------------------------------------- bare reader

// A hiredis reader with limits attached; feed() parses like the async
// context does (every complete reply taken, then check_buffered()).
class Reader {
 public:
  Reader() : r_(redisReaderCreate()) { limits_.attach(r_); }
  ~Reader() { redisReaderFree(r_); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // False once the reader failed or a limit was passed; `replies` counts
  // the complete ones.
  bool feed(std::string_view data) {
    if (redisReaderFeed(r_, data.data(), data.size()) != REDIS_OK) return false;
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(r_, &reply) != REDIS_OK) return false;
      if (!reply) break;
      ++replies;
      freeReplyObject(reply);
    }
    return limits_.check_buffered(r_);
  }
  const std::string& refused() const { return limits_.refused(); }
  size_t buffered() const { return r_->len - r_->pos; }

  int replies = 0;

 private:
  redisReader* r_;
  RedisReplyLimits limits_;
};

std::string nested(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "*1\r\n";
  return s + ":1\r\n";
}

TEST(RedisReplyLimitsTest, OrdinaryRepliesPassAndBudgetsAreReplyByReply) {
  Reader r;
  EXPECT_TRUE(r.feed("+OK\r\n:42\r\n$-1\r\n*-1\r\n-ERR no\r\n$3\r\nabc\r\n"));
  EXPECT_TRUE(r.feed("*2\r\n$1\r\n0\r\n*3\r\n$2\r\nk1\r\n$2\r\nk2\r\n:7\r\n"));  // SCAN-like
  EXPECT_TRUE(r.feed(nested(RedisReplyLimits::kMaxDepth - 1)));
  // Each reply may use the whole element budget.
  const std::string big = "*" + std::to_string(RedisReplyLimits::kMaxElements) + "\r\n";
  std::string ints;
  for (size_t i = 0; i < RedisReplyLimits::kMaxElements; ++i) ints += ":1\r\n";
  EXPECT_TRUE(r.feed(big + ints));
  EXPECT_TRUE(r.feed(big + ints));
  // Split anywhere, a reply waits for the rest.
  EXPECT_TRUE(r.feed("*2\r\n$5\r\nhe"));
  EXPECT_TRUE(r.feed("llo\r\n$" + std::to_string(RedisReplyLimits::kMaxBytes - 5)));
  EXPECT_TRUE(r.feed("\r\nxyz"));  // announced exactly at the budget: accepted, buffering
  EXPECT_EQ(r.replies, 10);
  EXPECT_EQ(r.refused(), "");
}

TEST(RedisReplyLimitsTest, HugeArrayIsRefusedBeforeAnyAllocation) {
  Reader r;
  const auto t0 = Clock::now();
  EXPECT_FALSE(r.feed("*2147483000\r\n"));
  EXPECT_LT(Clock::now() - t0, 100ms);
  EXPECT_NE(r.refused().find("array of 2147483000 elements"), std::string::npos) << r.refused();
}

TEST(RedisReplyLimitsTest, ElementsCountOverTheWholeReply) {
  Reader r;
  const size_t half = RedisReplyLimits::kMaxElements / 2 + 1;
  std::string ints;
  for (size_t i = 0; i < half; ++i) ints += ":1\r\n";
  EXPECT_FALSE(r.feed("*2\r\n*" + std::to_string(half) + "\r\n" + ints + "*" + std::to_string(half) + "\r\n"));
  EXPECT_NE(r.refused().find("after " + std::to_string(half + 2) + " others"), std::string::npos) << r.refused();
}

TEST(RedisReplyLimitsTest, DeepNestingIsRefused) {
  Reader r;
  EXPECT_FALSE(r.feed(nested(RedisReplyLimits::kMaxDepth + 1)));
  EXPECT_NE(r.refused().find("nested"), std::string::npos) << r.refused();
}

TEST(RedisReplyLimitsTest, HugeBulkIsRefusedOnItsLengthLine) {
  Reader r;
  EXPECT_FALSE(r.feed("$2147483000\r\n" + std::string(16 * 1024, 'x')));
  EXPECT_NE(r.refused().find("bulk string of 2147483000 bytes"), std::string::npos) << r.refused();

  // Inside an array, the strings before it count.
  Reader a;
  EXPECT_TRUE(a.feed("*2\r\n$4\r\nabcd\r\n$" + std::to_string(RedisReplyLimits::kMaxBytes - 4) + "\r\n"));
  Reader b;
  EXPECT_FALSE(b.feed("*2\r\n$4\r\nabcd\r\n$" + std::to_string(RedisReplyLimits::kMaxBytes - 3) + "\r\n"));
  EXPECT_NE(b.refused().find("bulk string"), std::string::npos) << b.refused();

  // A length line that never ends.
  Reader c;
  EXPECT_TRUE(c.feed("$12345"));
  EXPECT_FALSE(c.feed(std::string(64, '7')));
}

TEST(RedisReplyLimitsTest, EndlessLineIsRefused) {
  Reader r;
  EXPECT_TRUE(r.feed("-ERR " + std::string(1000, 'e')));
  std::string chunk(16 * 1024, 'e');
  bool ok = true;
  for (int i = 0; ok && i < 100; ++i) ok = r.feed(chunk);
  EXPECT_FALSE(ok);
  EXPECT_LE(r.buffered(), RedisReplyLimits::kMaxLine + chunk.size() + 1000);
  EXPECT_NE(r.refused().find("line of more than"), std::string::npos) << r.refused();
}

// ------------------------------------------------------- through a client

// A fake Redis on 127.0.0.1: every connection gets `head` once its first
// command arrived, then (when `stream`) filler bytes for as long as the
// peer reads them; otherwise it is held open until the peer closes.
class FakeRedis {
 public:
  FakeRedis(std::string head, bool stream) : head_(std::move(head)), stream_(stream) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      ADD_FAILURE() << "fake redis: " << std::strerror(errno);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~FakeRedis() {
    stop_ = true;
    thread_.join();  // then conns_ is ours alone
    for (auto& t : conns_) t.join();
    ::close(fd_);
  }
  FakeRedis(const FakeRedis&) = delete;
  FakeRedis& operator=(const FakeRedis&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int answered() const { return answered_.load(); }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c >= 0) conns_.emplace_back([this, c] { serve(c); });
    }
  }
  // Blocking calls with a 20 ms timeout, so that stop_ is seen.
  void serve(int c) {
    timeval tv{0, 20000};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char buf[4096];
    auto gone = [](ssize_t n) { return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR); };
    for (;;) {
      if (stop_) return (void)::close(c);
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n > 0) break;
      if (gone(n)) return (void)::close(c);
    }
    ::send(c, head_.data(), head_.size(), MSG_NOSIGNAL);
    ++answered_;
    const std::string filler(64 * 1024, 'x');
    while (!stop_) {
      const ssize_t n = stream_ ? ::send(c, filler.data(), filler.size(), MSG_NOSIGNAL) : ::recv(c, buf, sizeof buf, 0);
      if (stream_ ? (n < 0 && errno != EAGAIN && errno != EINTR) : gone(n)) break;
    }
    ::close(c);
  }

  const std::string head_;
  const bool stream_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;
  std::vector<std::thread> conns_;
};

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// "VmRSS" / "VmHWM" of this process in MiB.
double status_mib(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  return 0;
}

struct Case {
  const char* name;
  std::string head;
  bool stream;
  const char* reason;  // in the log line
};

// ctest names the instances by this, not by the bytes of Case.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class RedisReplyLimitsClientTest : public ::testing::TestWithParam<Case> {};

TEST_P(RedisReplyLimitsClientTest, FailsFastStaysSmallAndStopsInTime) {
  const Case& k = GetParam();
  FakeRedis fake(k.head, k.stream);
  std::mutex mu;
  std::vector<std::pair<Clock::time_point, std::string>> lines;
  config::RedisConfig cfg;
  cfg.address = fake.address();
  cfg.timeout = config::Duration(200);
  auto client = std::make_unique<RedisClient>(cfg, [&](bool error, const std::string& line) {
    std::lock_guard lock(mu);
    lines.emplace_back(Clock::now(), (error ? "E " : "I ") + line);
  });
  auto log_lines = [&] {
    std::lock_guard lock(mu);
    return lines.size();
  };
  auto dump = [&] {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& l : lines) out += l.second + "\n";
    return out;
  };
  std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM := VmRSS, to see this test's peak
  const double rss0 = status_mib("VmRSS");
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  client->start();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return !lines.empty();
  }, 5s)) << "no failure reported";
  {
    std::lock_guard lock(mu);
    EXPECT_LT(lines[0].first - t0, 1s) << "failure reported after "
                                       << std::chrono::duration<double>(lines[0].first - t0).count() << " s";
    EXPECT_EQ(lines[0].second.rfind("E redis: cannot connect to " + fake.address() + ": reply refused: ", 0), 0u)
        << lines[0].second;
    EXPECT_NE(lines[0].second.find(k.reason), std::string::npos) << lines[0].second;
  }
  // Retried with backoff (100, 200, 400 ms...), logged once, never up.
  std::this_thread::sleep_for(1500ms);
  const double cpu = cpu_seconds() - cpu0;
  EXPECT_GE(fake.answered(), 3) << dump();
  EXPECT_LE(fake.answered(), 8) << "no backoff between attempts\n" << dump();
  EXPECT_FALSE(client->connected());
  EXPECT_EQ(log_lines(), 1u) << "one log line per outage:\n" << dump();
  // The whole process (client and fake): a fraction of one core.
  EXPECT_LT(cpu, 0.5) << "CPU seconds over ~1.6 s";
  const double growth = status_mib("VmHWM") - rss0;
  EXPECT_LT(growth, 100.0) << "peak RSS grew by " << growth << " MiB";

  const auto s0 = Clock::now();
  client->stop();
  EXPECT_LT(Clock::now() - s0, 1s);
  client.reset();
}

INSTANTIATE_TEST_SUITE_P(
    Peers, RedisReplyLimitsClientTest,
    ::testing::Values(Case{"HugeArray", "*2147483000\r\n", false, "array of 2147483000 elements"},
                      Case{"HugeBulkThenEndlessBytes", "$2147483000\r\n", true, "bulk string of 2147483000 bytes"},
                      Case{"EndlessLine", "+", true, "line of more than"},
                      Case{"HugeArrayInsideAnArray", "*2\r\n:1\r\n*2147483000\r\n", false, "elements"}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// Large replies a real Redis gives, well below the limits, still arrive
// whole, on a connection that stays up.
class RedisReplyLimitsRealRedisTest : public testing::RedisTest {};

TEST_F(RedisReplyLimitsRealRedisTest, LargeLegitimateRepliesPass) {
  config::RedisConfig cfg = redis_config(server_);
  cfg.timeout = config::Duration(5000);  // sizes, not speed, are tested here (also under ASan)
  RedisClient c(cfg, {});
  c.start();
  ASSERT_TRUE(c.wait_connected(10s));
  auto run = [&](std::vector<std::string> argv) {
    auto p = std::make_shared<std::promise<std::pair<boost::system::error_code, RedisReply>>>();
    auto f = p->get_future();
    c.command(std::move(argv), [p](boost::system::error_code ec, const RedisReply& r) { p->set_value({ec, r}); });
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
    return f.get();
  };
  const std::string value(8 << 20, 'v');
  ASSERT_FALSE(run({"SET", "big", value}).first);
  auto [ec, r] = run({"GET", "big"});
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.str.size(), value.size());
  // 200k elements (RPUSH in batches), and 3 levels of nesting.
  for (int b = 0; b < 20; ++b) {
    std::vector<std::string> argv{"RPUSH", "list"};
    for (int i = 0; i < 10000; ++i) argv.push_back(std::to_string(b * 10000 + i));
    ASSERT_FALSE(run(argv).first);
  }
  std::tie(ec, r) = run({"LRANGE", "list", "0", "-1"});
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(r.elements.size(), 200000u);
  EXPECT_EQ(r.elements.back().str, "199999");
  std::tie(ec, r) = run({"EVAL", "return {1, {2, {3, 'x'}}}", "0"});
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_EQ(r.type, Type::kArray);
  EXPECT_EQ(r.elements[1].elements[1].elements[1].str, "x");
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.errors(), 0u);
}


// hiredis 0.14 aborts the process (an assert in redisProcessCallbacks) on a
// reply past the commands sent; the limits refuse it as a connection error.
TEST(RedisReplyLimitsUnsolicitedTest, RepliesNobodyAskedForFailTheConnectionNotTheProcess) {
  FakeRedis fake("+PONG\r\n+PONG\r\n+PONG\r\n:1\r\n$1\r\nx\r\n*0\r\n", false);
  std::mutex mu;
  std::vector<std::string> lines;
  config::RedisConfig cfg;
  cfg.address = fake.address();
  cfg.timeout = config::Duration(200);
  auto client = std::make_unique<RedisClient>(cfg, [&](bool error, const std::string& line) {
    std::lock_guard lock(mu);
    lines.push_back((error ? "E " : "I ") + line);
  });
  client->start();
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    for (const auto& l : lines)
      if (l.find("reply refused: a reply nobody asked for") != std::string::npos) return true;
    return false;
  }, 5s));
  const auto s0 = Clock::now();
  client->stop();
  EXPECT_LT(Clock::now() - s0, 1s);
}

}  // namespace
}  // namespace sag::redis
