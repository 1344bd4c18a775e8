// One real AdminServer on a loopback port: HTTP framing, keep-alive,
// limits, and the connection bound that keeps /healthz reachable.
#include "gateway/admin/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/gateway/admin/admin_test_support.h"

namespace sag::gateway {
namespace {

using namespace std::chrono_literals;
using admin_test::make_config;
using affinity::AdminState;

struct RawClient {
  explicit RawClient(uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd); }
  void send(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      s.remove_prefix(static_cast<size_t>(n));
    }
  }
  // Reads one response (head + Content-Length body).
  std::string response() {
    for (;;) {
      const size_t end = buf.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t len = 0;
        const size_t cl = buf.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) len = std::stoul(buf.substr(cl + 16));
        if (buf.size() >= end + 4 + len) {
          std::string r = buf.substr(0, end + 4 + len);
          buf.erase(0, end + 4 + len);
          return r;
        }
      }
      char tmp[4096];
      const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) {
        std::string r = buf;
        buf.clear();
        return r;
      }
      buf.append(tmp, static_cast<size_t>(n));
    }
  }
  bool closed() {
    char c;
    return ::recv(fd, &c, 1, 0) == 0;
  }
  int fd;
  bool connected = false;
  std::string buf;
};

TEST(AdminServerTest, ServesOverHttp) {
  auto cfg = make_config(true);
  affinity::BackendSet backends(*cfg);
  session::GatewayStats stats(*cfg);
  std::string error;
  auto server = AdminServer::start(cfg, backends, stats, {}, error);
  ASSERT_TRUE(server) << error;
  ASSERT_NE(server->port(), 0);

  RawClient c(server->port());
  ASSERT_TRUE(c.connected);
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Cache-Control: no-store\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos) << r;
  EXPECT_TRUE(r.ends_with("\r\n\r\nok\n")) << r;

  // Same connection (keep-alive): auth required.
  c.send("GET /api/backends HTTP/1.1\r\nHost: x\r\n\r\n");
  r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("WWW-Authenticate: Basic realm=\"sag\"\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Content-Type: application/json\r\n"), std::string::npos) << r;

  // A PUT with a body, then a HEAD (length without body).
  const std::string body = R"({"state": "drain"})";
  c.send("PUT /api/backends/app/servers/s2 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
         "YWRtaW46c2VjcmV0\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body);
  r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("\"state\": \"drain\""), std::string::npos) << r;
  EXPECT_EQ(backends.find("app")->find_server("s2")->admin_state(), AdminState::kDrain);

  c.send("HEAD /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46c2VjcmV0\r\n\r\n");
  const size_t before = c.buf.size();
  (void)before;
  // A HEAD response has a Content-Length but no body: read the head only.
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos) {
    char tmp[4096];
    ssize_t n = ::recv(c.fd, tmp, sizeof tmp, 0);
    ASSERT_GT(n, 0);
    head.append(tmp, static_cast<size_t>(n));
  }
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << "no body after a HEAD head: " << head;

  // Expect: 100-continue is honoured.
  c.send("PUT /api/backends/app/servers/s2 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
         "YWRtaW46c2VjcmV0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  r = c.response();
  EXPECT_EQ(r, "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("{}");
  r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;

  // Connection: close is honoured.
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_TRUE(c.closed());

  // Bodies are bounded: 413, then close.
  RawClient big(server->port());
  big.send("PUT /api/backends/app/servers/s2 HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n");
  big.send(std::string(70000, ' '));
  r = big.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 413 ", 0), 0u) << r;

  // Garbage: 400, then close.
  RawClient junk(server->port());
  junk.send("GET / HTTP/1.1\r\nBad Header\r\n\r\n");
  r = junk.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 400 ", 0), 0u) << r;
  EXPECT_TRUE(junk.closed());

  // Huge head: 431.
  RawClient huge(server->port());
  huge.send("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n");
  r = huge.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 431 ", 0), 0u) << r;

  server->stop();
  server->stop();  // idempotent
  RawClient after(server->port());
  EXPECT_FALSE(after.connected);
}

// 64 connections at most: at the limit a new connection replaces the one
// that has waited longest for its request, so idle and half-sent requests
// never keep /healthz from answering (admin_connections.h).
TEST(AdminServerTest, WaitingConnectionsGiveWayToNewOnes) {
  auto cfg = make_config(false);
  affinity::BackendSet backends(*cfg);
  session::GatewayStats stats(*cfg);
  std::string error;
  auto server = AdminServer::start(cfg, backends, stats, {}, error);
  ASSERT_TRUE(server) << error;

  // A keep-alive client that has just been answered: the newest waiting.
  auto ask_healthz = [](RawClient& c) {
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    return c.response();
  };
  std::vector<std::unique_ptr<RawClient>> flood;
  for (int i = 0; i < 40; ++i) flood.push_back(std::make_unique<RawClient>(server->port()));
  RawClient kept(server->port());
  ASSERT_EQ(ask_healthz(kept).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  for (int i = 0; i < 100; ++i) {
    flood.push_back(std::make_unique<RawClient>(server->port()));
    ASSERT_TRUE(flood.back()->connected);
    if (i % 3 == 0) flood.back()->send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  for (int round = 0; round < 5; ++round) {
    RawClient probe(server->port());
    const auto t0 = std::chrono::steady_clock::now();
    const std::string r = ask_healthz(probe);
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  }
  // The oldest were closed to make room, oldest first; `kept` came after
  // the first 40 and before 100 others, so it went too.
  EXPECT_TRUE(flood.front()->closed());
  EXPECT_TRUE(flood[39]->closed());
  EXPECT_TRUE(kept.closed());
  // The most recent ones are still open: a half-sent head gets no answer yet.
  RawClient& last = *flood.back();
  timeval tv{0, 200000};
  setsockopt(last.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  EXPECT_EQ(::recv(last.fd, &c, 1, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
  server->stop();
}

TEST(AdminServerTest, BindFailureIsReported) {
  auto cfg = make_config(false);
  affinity::BackendSet backends(*cfg);
  session::GatewayStats stats(*cfg);
  std::string error;
  auto first = AdminServer::start(cfg, backends, stats, {}, error);
  ASSERT_TRUE(first) << error;
  auto cfg2 = make_config(false);
  cfg2->admin->endpoint.port = first->port();
  cfg2->admin->bind = "127.0.0.1:" + std::to_string(first->port());
  auto second = AdminServer::start(cfg2, backends, stats, {}, error);
  EXPECT_FALSE(second);
  EXPECT_NE(error.find("bind 127.0.0.1:"), std::string::npos) << error;

  auto none = std::make_shared<config::GatewayConfig>();
  EXPECT_FALSE(AdminServer::start(none, backends, stats, {}, error));
}

}  // namespace
}  // namespace sag::gateway
