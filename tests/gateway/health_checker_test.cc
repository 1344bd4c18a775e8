// HealthChecker against real sockets on 127.0.0.1: a tiny HTTP server in a
// thread whose answer the test switches at run time.
#include "gateway/health_checker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "affinity/model/backend.h"
#include "config/gateway_config.h"

namespace sag::gateway {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// Accepts on 127.0.0.1:0; for each connection reads the request head and
// answers `status` (or, when `silent`, never answers and keeps the socket
// open until stop).
class TinyHttpServer {
 public:
  TinyHttpServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~TinyHttpServer() {
    running_ = false;
    thread_.join();
    ::close(fd_);
    for (int c : held_) ::close(c);
  }

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::atomic<int> status{200};
  std::atomic<bool> silent{false};
  std::atomic<int> requests{0};
  std::atomic<int> accepted{0};
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  void run() {
    while (running_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++accepted;
      if (silent) {
        held_.push_back(c);
        continue;
      }
      std::string head;
      char buf[1024];
      while (head.find("\r\n\r\n") == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 1000) <= 0) break;
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        last_ = head;
      }
      ++requests;
      const std::string resp = "HTTP/1.1 " + std::to_string(status.load()) +
                               " Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> running_{true};
  std::thread thread_;
  std::vector<int> held_;
  std::mutex mu_;
  std::string last_;
};

// A port nothing listens on (bound once, then closed).
uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

config::HealthCheckConfig http_check(std::chrono::milliseconds interval, uint32_t rise = 2,
                                     uint32_t fall = 2) {
  config::HealthCheckConfig hc;
  hc.type = config::HealthCheckType::kHttp;
  hc.path = "/healthz";
  hc.interval = interval;
  hc.timeout = 500ms;
  hc.rise = rise;
  hc.fall = fall;
  return hc;
}

config::HealthCheckConfig tcp_check(std::chrono::milliseconds interval) {
  config::HealthCheckConfig hc;
  hc.type = config::HealthCheckType::kTcp;
  hc.interval = interval;
  hc.timeout = 500ms;
  return hc;
}

config::HealthCheckConfig no_check() {
  config::HealthCheckConfig hc;
  hc.type = config::HealthCheckType::kNone;
  return hc;
}

// One backend "app" with servers s1, s2, ... at `addresses`.
struct Fixture {
  Fixture(std::vector<std::string> addresses, config::HealthCheckConfig hc,
          std::optional<config::PassiveConfig> passive = std::nullopt) {
    config::BackendConfig b;
    b.name = "app";
    for (size_t i = 0; i < addresses.size(); ++i) {
      config::ServerConfig s;
      s.name = "s" + std::to_string(i + 1);
      s.address = addresses[i];
      s.endpoint = *config::Endpoint::parse(addresses[i]);
      b.servers.push_back(s);
    }
    b.health_check = hc;
    b.passive = passive;
    gc.backends.push_back(b);
    set = std::make_unique<affinity::BackendSet>(gc);
    checker = std::make_unique<HealthChecker>(*set, 42);
  }
  affinity::Server& server(size_t i = 0) { return *set->backends()[0]->servers()[i]; }

  config::GatewayConfig gc;
  std::unique_ptr<affinity::BackendSet> set;
  std::unique_ptr<HealthChecker> checker;
};

// Polls pred every 2 ms; the time it took, or nullopt after `limit`.
std::optional<Clock::duration> time_until(const std::function<bool()>& pred,
                                          Clock::duration limit = 3s) {
  const auto start = Clock::now();
  while (!pred()) {
    if (Clock::now() - start > limit) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
  return Clock::now() - start;
}

TEST(HealthCheckerTest, FirstSuccessDecidesUpAtOnce) {
  TinyHttpServer srv;
  Fixture f({srv.address()}, http_check(100ms, /*rise=*/3, /*fall=*/3));
  EXPECT_FALSE(f.server().healthy()) << "a checked server is down until its first result";
  EXPECT_EQ(f.checker->last_check(f.server()), "-");
  EXPECT_TRUE(f.checker->checked(f.server()));
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  EXPECT_TRUE(f.server().healthy()) << "one success is enough for the initial state";
  EXPECT_EQ(f.server().up_since(), Clock::time_point{}) << "up from the start: no slow-start ramp";
  EXPECT_THAT(f.checker->last_check(f.server()), MatchesRegex("200 in [0-9]+ms"));
  const std::string req = srv.last_request();
  EXPECT_THAT(req, StartsWith("GET /healthz HTTP/1.1\r\n"));
  EXPECT_NE(req.find("\r\nHost: " + srv.address() + "\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nUser-Agent: sag-health-check\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("\r\nConnection: close\r\n"), std::string::npos) << req;
}

TEST(HealthCheckerTest, ConfiguredHostIsSent) {
  TinyHttpServer srv;
  auto hc = http_check(100ms);
  hc.host = "app.internal";
  Fixture f({srv.address()}, hc);
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  EXPECT_NE(srv.last_request().find("\r\nHost: app.internal\r\n"), std::string::npos);
}

TEST(HealthCheckerTest, FirstFailureDecidesDownAtOnce) {
  TinyHttpServer srv;
  srv.status = 500;
  Fixture f({srv.address()}, http_check(300ms, 2, /*fall=*/3));
  const auto start = Clock::now();
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  EXPECT_LT(Clock::now() - start, 250ms) << "the first failure decides, not `fall` of them";
  EXPECT_EQ(srv.requests.load(), 1);
  EXPECT_FALSE(f.server().healthy());
  EXPECT_THAT(f.checker->last_check(f.server()), MatchesRegex("status 500 in [0-9]+ms"));
}

TEST(HealthCheckerTest, GoesDownAfterFallFailures) {
  TinyHttpServer srv;
  Fixture f({srv.address()}, http_check(50ms, 2, /*fall=*/3));
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  ASSERT_TRUE(f.server().healthy());
  const int before = srv.requests.load();
  srv.status = 503;
  auto took = time_until([&] { return !f.server().healthy(); });
  ASSERT_TRUE(took.has_value());
  // Three failed checks: at least two intervals (-10% jitter) after the first.
  EXPECT_GE(*took, 90ms);
  EXPECT_LT(*took, 1500ms);
  EXPECT_GE(srv.requests.load() - before, 3);
  EXPECT_THAT(f.checker->last_check(f.server()), MatchesRegex("status 503 in [0-9]+ms"));
}

TEST(HealthCheckerTest, ComesBackAfterRiseSuccessesWithSlowStartRamp) {
  TinyHttpServer srv;
  srv.status = 500;
  Fixture f({srv.address()}, http_check(50ms, /*rise=*/3, 2));
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  ASSERT_FALSE(f.server().healthy());
  const auto switched = Clock::now();
  srv.status = 200;
  auto took = time_until([&] { return f.server().healthy(); });
  ASSERT_TRUE(took.has_value());
  EXPECT_GE(*took, 90ms) << "three successes are needed";
  EXPECT_LT(*took, 1500ms);
  EXPECT_GE(f.server().up_since(), switched) << "a server seen down ramps under slow start";
  EXPECT_THAT(f.checker->last_check(f.server()), MatchesRegex("200 in [0-9]+ms"));
}

TEST(HealthCheckerTest, TcpCheck) {
  TinyHttpServer srv;
  Fixture f({srv.address(), "127.0.0.1:" + std::to_string(closed_port())}, tcp_check(100ms));
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  EXPECT_TRUE(f.server(0).healthy());
  EXPECT_THAT(f.checker->last_check(f.server(0)), MatchesRegex("connected in [0-9]+ms"));
  EXPECT_FALSE(f.server(1).healthy());
  EXPECT_EQ(f.checker->last_check(f.server(1)), "connection refused");
}

TEST(HealthCheckerTest, HttpCheckAgainstClosedPort) {
  Fixture f({"127.0.0.1:" + std::to_string(closed_port())}, http_check(100ms));
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  EXPECT_FALSE(f.server().healthy());
  EXPECT_EQ(f.checker->last_check(f.server()), "connection refused");
}

TEST(HealthCheckerTest, ExpectStatusRange) {
  TinyHttpServer a, b, c;
  a.status = 204;
  b.status = 302;
  c.status = 199;
  auto hc = http_check(100ms);
  hc.expect_status_min = 200;
  hc.expect_status_max = 299;
  Fixture f({a.address(), b.address(), c.address()}, hc);
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  EXPECT_TRUE(f.server(0).healthy());
  EXPECT_THAT(f.checker->last_check(f.server(0)), MatchesRegex("204 in [0-9]+ms"));
  EXPECT_FALSE(f.server(1).healthy());
  EXPECT_THAT(f.checker->last_check(f.server(1)), MatchesRegex("status 302 in [0-9]+ms"));
  EXPECT_FALSE(f.server(2).healthy());
}

TEST(HealthCheckerTest, SilentServerTimesOut) {
  TinyHttpServer srv;
  srv.silent = true;
  auto hc = http_check(50ms);
  hc.timeout = 100ms;
  Fixture f({srv.address()}, hc);
  const auto start = Clock::now();
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  EXPECT_GE(Clock::now() - start, 95ms);
  EXPECT_LT(Clock::now() - start, 600ms);
  EXPECT_FALSE(f.server().healthy());
  EXPECT_EQ(f.checker->last_check(f.server()), "timeout after 100ms");
}

// A listener whose accept queue is full: the kernel drops further SYNs, so a
// connect hangs (until the client's SYN retry, 1 s later).
struct FullListener {
  FullListener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    for (int i = 0; i < 3; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
      fillers.push_back(c);
    }
    std::this_thread::sleep_for(20ms);
  }
  ~FullListener() {
    for (int c : fillers) ::close(c);
    ::close(fd);
  }
  int fd = -1;
  uint16_t port = 0;
  std::vector<int> fillers;
};

TEST(HealthCheckerTest, ConnectTimeout) {
  FullListener full;
  auto hc = tcp_check(50ms);
  hc.timeout = 100ms;
  Fixture f({"127.0.0.1:" + std::to_string(full.port)}, hc);
  const auto start = Clock::now();
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  EXPECT_GE(Clock::now() - start, 95ms);
  EXPECT_LT(Clock::now() - start, 600ms);
  EXPECT_FALSE(f.server().healthy());
  EXPECT_EQ(f.checker->last_check(f.server()), "timeout after 100ms");
  // stop() is prompt with a connect in flight too.
  std::this_thread::sleep_for(80ms);
  const auto stop_start = Clock::now();
  f.checker->stop();
  EXPECT_LT(Clock::now() - stop_start, 100ms);
}

TEST(HealthCheckerTest, TimeoutLongerThanIntervalNeverOverlaps) {
  TinyHttpServer srv;
  srv.silent = true;
  auto hc = tcp_check(20ms);
  hc.type = config::HealthCheckType::kHttp;
  hc.timeout = 150ms;
  Fixture f({srv.address()}, hc);
  f.checker->start();
  std::this_thread::sleep_for(400ms);
  f.checker->stop();
  // One check every ~170 ms (timeout + interval), never one every 20 ms.
  EXPECT_GE(srv.accepted.load(), 2);
  EXPECT_LE(srv.accepted.load(), 3);
  EXPECT_EQ(f.checker->last_check(f.server()), "timeout after 150ms");
}

TEST(HealthCheckerTest, TypeNoneStaysUp) {
  Fixture f({"127.0.0.1:" + std::to_string(closed_port())}, no_check());
  EXPECT_TRUE(f.server().healthy());
  EXPECT_FALSE(f.checker->checked(f.server()));
  f.checker->start();
  EXPECT_TRUE(f.checker->wait_first_round(0ms)) << "nothing to wait for";
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(f.server().healthy());
  EXPECT_EQ(f.checker->last_check(f.server()), "-");
}

TEST(HealthCheckerTest, PassiveEjectionWithoutChecksEndsAfterEjectFor) {
  config::PassiveConfig passive;
  passive.consecutive_failures = 3;
  passive.eject_for = 200ms;
  auto hc = no_check();
  Fixture f({"127.0.0.1:1"}, hc, passive);
  f.checker->start();
  auto& s = f.server();
  for (int i = 0; i < 3; ++i) s.record_failure();
  const auto ejected = Clock::now();
  ASSERT_TRUE(s.eject(ejected));
  EXPECT_FALSE(s.up());
  auto took = time_until([&] { return !s.ejected(); });
  ASSERT_TRUE(took.has_value());
  EXPECT_GE(*took, 195ms);
  EXPECT_LT(*took, 600ms);
  EXPECT_TRUE(s.up());
  EXPECT_EQ(s.consecutive_failures(), 0u) << "back on probation";
  EXPECT_GE(s.up_since(), ejected + 200ms) << "slow start ramps it back in";
}

TEST(HealthCheckerTest, PassiveEjectionWithChecksNeedsEjectForAndASuccess) {
  TinyHttpServer srv;
  config::PassiveConfig passive;
  passive.eject_for = 200ms;
  // fall high: the failing checks below must not take it down by themselves.
  Fixture f({srv.address()}, http_check(50ms, 2, /*fall=*/100), passive);
  f.checker->start();
  ASSERT_TRUE(f.checker->wait_first_round(2s));
  auto& s = f.server();

  // Checks succeed all along: out for eject_for, back at the next success.
  ASSERT_TRUE(s.eject(Clock::now()));
  auto took = time_until([&] { return !s.ejected(); });
  ASSERT_TRUE(took.has_value());
  EXPECT_GE(*took, 195ms);
  EXPECT_LT(*took, 700ms);

  // Checks fail: eject_for passes but it stays out until one succeeds.
  srv.status = 500;
  ASSERT_TRUE(s.eject(Clock::now()));
  std::this_thread::sleep_for(450ms);
  EXPECT_TRUE(s.ejected());
  EXPECT_TRUE(s.healthy());
  const auto fixed = Clock::now();
  srv.status = 200;
  took = time_until([&] { return !s.ejected(); });
  ASSERT_TRUE(took.has_value());
  EXPECT_LT(*took, 500ms);
  EXPECT_GE(s.up_since(), fixed);
}

TEST(HealthCheckerTest, StopIsPromptWithChecksInFlight) {
  TinyHttpServer srv;
  srv.silent = true;
  auto hc = http_check(50ms);
  hc.timeout = 5s;
  config::PassiveConfig passive;
  Fixture f({srv.address(), srv.address()}, hc, passive);
  f.checker->start();
  std::this_thread::sleep_for(50ms);  // both checks now wait for an answer
  const auto start = Clock::now();
  f.checker->stop();
  EXPECT_LT(Clock::now() - start, 100ms);
  EXPECT_FALSE(f.checker->wait_first_round(10ms));
  f.checker->stop();  // idempotent
}

TEST(HealthCheckerTest, WaitFirstRoundTimesOut) {
  TinyHttpServer srv;
  srv.silent = true;
  auto hc = http_check(50ms);
  hc.timeout = 2s;
  Fixture f({srv.address()}, hc);
  f.checker->start();
  const auto start = Clock::now();
  EXPECT_FALSE(f.checker->wait_first_round(100ms));
  EXPECT_LT(Clock::now() - start, 500ms);
}

}  // namespace
}  // namespace sag::gateway
