// RedisClient against real redis-server processes (tests/config/redis/
// redis_test_support.h): replies, AUTH/SELECT, timeouts, reconnection,
// subscriptions across reconnections, log lines, stop, sentinel failover.
#include "config/redis/redis_client.h"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>

#include "tests/config/redis/redis_test_support.h"

namespace sag::redis {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::redis_config;
using testing::RedisServer;
using Type = RedisReply::Type;

struct Result {
  boost::system::error_code ec;
  RedisReply reply;
  bool answered = false;
};

Result run(RedisClient& c, std::vector<std::string> argv, std::chrono::milliseconds wait = 10s) {
  auto p = std::make_shared<std::promise<Result>>();
  auto f = p->get_future();
  c.command(std::move(argv), [p](boost::system::error_code ec, const RedisReply& r) { p->set_value({ec, r, true}); });
  if (f.wait_for(wait) != std::future_status::ready) return {};
  return f.get();
}

class LogLines {
 public:
  RedisClient::LogSink sink() {
    return [this](bool error, const std::string& line) {
      std::lock_guard lock(mu_);
      lines_.push_back((error ? "E " : "I ") + line);
    };
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }
  size_t count(const std::string& prefix) const {
    size_t n = 0;
    for (const auto& l : lines())
      if (l.rfind(prefix, 0) == 0) ++n;
    return n;
  }
  std::string dump() const {
    std::string out;
    for (const auto& l : lines()) out += l + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// The server is started by each test (some start it late, or never).
class RedisClientTest : public testing::RedisTest {
 protected:
  RedisClientTest() : RedisTest(false) {}
};

TEST_F(RedisClientTest, RepliesOfEveryType) {
  ASSERT_TRUE(server_.start());
  RedisClient c(redis_config(server_), {});
  c.start();
  ASSERT_TRUE(c.wait_connected(10s));
  EXPECT_TRUE(c.connected());

  Result r = run(c, {"SET", "k", std::string("v\0w", 3)});
  ASSERT_TRUE(r.answered);
  EXPECT_FALSE(r.ec);
  EXPECT_EQ(r.reply.type, Type::kStatus);
  EXPECT_EQ(r.reply.str, "OK");
  r = run(c, {"GET", "k"});
  EXPECT_EQ(r.reply.type, Type::kString);
  EXPECT_EQ(r.reply.str, std::string("v\0w", 3));  // binary safe both ways
  r = run(c, {"GET", "absent"});
  EXPECT_FALSE(r.ec);
  EXPECT_EQ(r.reply.type, Type::kNil);
  r = run(c, {"INCRBY", "n", "41"});
  EXPECT_EQ(r.reply.type, Type::kInteger);
  EXPECT_EQ(r.reply.integer, 41);
  run(c, {"RPUSH", "l", "a", "b"});
  r = run(c, {"LRANGE", "l", "0", "-1"});
  ASSERT_EQ(r.reply.type, Type::kArray);
  ASSERT_EQ(r.reply.elements.size(), 2u);
  EXPECT_EQ(r.reply.elements[1].str, "b");
  r = run(c, {"INCR", "k"});  // a Redis error is a reply, not a failure
  EXPECT_FALSE(r.ec);
  EXPECT_EQ(r.reply.type, Type::kError);
  EXPECT_NE(r.reply.str.find("not an integer"), std::string::npos) << r.reply.str;
  EXPECT_EQ(c.errors(), 0u);

  // Many commands in flight at once keep their order.
  std::atomic<int> next{0}, disorder{0};
  std::promise<void> all;
  for (int i = 0; i < 2000; ++i)
    c.command({"INCR", "seq"}, [&, i](boost::system::error_code ec, const RedisReply& rep) {
      if (ec || rep.integer != i + 1 || next.fetch_add(1) != i) ++disorder;
      if (i == 1999) all.set_value();
    });
  ASSERT_EQ(all.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(disorder.load(), 0);
}

TEST_F(RedisClientTest, RefusedWhileDownOneLogLinePerStateChange) {
  LogLines log;
  std::atomic<int> ups{0}, downs{0};
  RedisClient c(redis_config(server_), log.sink());  // nothing listens yet
  c.on_state([&](bool up) { ++(up ? ups : downs); });
  c.start();
  EXPECT_FALSE(c.wait_connected(300ms));
  Result r = run(c, {"PING"});
  ASSERT_TRUE(r.answered);
  EXPECT_EQ(r.ec, boost::asio::error::not_connected);
  EXPECT_EQ(r.reply.type, Type::kNil);
  EXPECT_GE(c.errors(), 1u);
  std::this_thread::sleep_for(1500ms);  // several attempts with backoff
  EXPECT_EQ(log.count("E "), 1u) << log.dump();
  EXPECT_NE(log.dump().find("cannot connect to " + server_.address()), std::string::npos) << log.dump();

  ASSERT_TRUE(server_.start());
  ASSERT_TRUE(c.wait_connected(5s));
  EXPECT_TRUE(eventually([&] { return ups.load() == 1; }, 2s));
  EXPECT_EQ(log.count("I "), 1u) << log.dump();
  EXPECT_FALSE(run(c, {"PING"}).ec);

  server_.kill();
  EXPECT_TRUE(eventually([&] { return !c.connected(); }, 5s));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(downs.load(), 1);
  // The first failure, this loss, and its new cause once reconnecting is
  // refused (then no more: the same cause again).
  EXPECT_EQ(log.count("E "), 3u) << log.dump();
  EXPECT_NE(log.dump().find("lost " + server_.address()), std::string::npos) << log.dump();
  EXPECT_NE(log.dump().find("still cannot connect, now to " + server_.address() + ": Connection refused"),
            std::string::npos)
      << log.dump();
  c.stop();
}

TEST_F(RedisClientTest, AChangedCauseDuringAnOutageIsLoggedOnce) {
  LogLines log;
  RedisClient c(redis_config(server_), log.sink());  // nothing listens: refused
  c.start();
  EXPECT_FALSE(c.wait_connected(300ms));
  EXPECT_EQ(log.count("E "), 1u) << log.dump();
  // Something takes the connections now and never answers: timeouts.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(server_.port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 64), 0);
  EXPECT_TRUE(eventually([&] { return log.count("E ") == 2; }, 5s)) << log.dump();
  EXPECT_NE(log.dump().find("still cannot connect, now to " + server_.address()), std::string::npos)
      << log.dump();
  std::this_thread::sleep_for(1500ms);  // more attempts, the same cause: no more lines
  EXPECT_EQ(log.count("E "), 2u) << log.dump();
  c.stop();
  ::close(fd);
}

TEST_F(RedisClientTest, TimesOutWhenTheServerStopsAnsweringAndRecovers) {
  ASSERT_TRUE(server_.start());
  std::atomic<int> ups{0}, downs{0};
  RedisClient c(redis_config(server_), {});
  c.on_state([&](bool up) { ++(up ? ups : downs); });
  c.start();
  ASSERT_TRUE(c.wait_connected(10s));
  ASSERT_FALSE(run(c, {"SET", "a", "1"}).ec);

  server_.pause();  // connected, but nothing answers
  const auto t0 = std::chrono::steady_clock::now();
  Result r = run(c, {"GET", "a"});
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.answered);
  EXPECT_EQ(r.ec, boost::asio::error::timed_out);
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 3s);  // timeout 200 ms
  EXPECT_TRUE(eventually([&] { return !c.connected() && downs.load() == 1; }, 2s));
  const uint64_t errors = c.errors();
  EXPECT_GE(errors, 1u);
  r = run(c, {"GET", "a"});  // while down: refused at once
  EXPECT_TRUE(r.ec == boost::asio::error::not_connected || r.ec == boost::asio::error::timed_out) << r.ec.message();

  server_.resume();
  ASSERT_TRUE(c.wait_connected(10s));
  r = run(c, {"GET", "a"});
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.reply.str, "1");
  EXPECT_EQ(ups.load(), 2);
}

TEST_F(RedisClientTest, SubscriptionsSurviveAServerRestart) {
  ASSERT_TRUE(server_.start());
  std::mutex mu;
  std::vector<std::string> got;
  std::atomic<int> ups{0};
  RedisClient c(redis_config(server_), {});
  c.on_state([&](bool up) { ups += up ? 1 : 0; });
  c.subscribe("chan", [&](std::string_view p) {
    std::lock_guard lock(mu);
    got.emplace_back(p);
  });
  c.start();
  ASSERT_TRUE(c.wait_connected(10s));  // up = subscribed too
  auto received = [&](const std::string& want) {
    return eventually([&] {
      std::lock_guard lock(mu);
      return std::find(got.begin(), got.end(), want) != got.end();
    }, 5s);
  };
  auto pub = server_.cli({"PUBLISH", "chan", "one"});
  ASSERT_TRUE(pub);
  EXPECT_EQ(pub->integer, 1);  // one subscriber: the client
  EXPECT_TRUE(received("one"));
  // A second subscriber to the same channel, and another channel, added
  // while up.
  std::atomic<int> second{0};
  c.subscribe("chan", [&](std::string_view) { ++second; });
  c.subscribe("other", [&](std::string_view p) {
    std::lock_guard lock(mu);
    got.emplace_back("other:" + std::string(p));
  });
  EXPECT_TRUE(eventually([&] {
    auto n = server_.cli({"PUBSUB", "NUMSUB", "other"});
    return n && n->elements.size() == 2 && n->elements[1].integer == 1;
  }, 5s));

  server_.kill();
  ASSERT_TRUE(server_.start());
  ASSERT_TRUE(eventually([&] { return ups.load() == 2; }, 10s));
  pub = server_.cli({"PUBLISH", "chan", "two"});
  ASSERT_TRUE(pub);
  EXPECT_EQ(pub->integer, 1);
  EXPECT_TRUE(received("two"));
  EXPECT_TRUE(eventually([&] { return second.load() == 1; }, 5s));
  server_.cli({"PUBLISH", "other", "x"});
  EXPECT_TRUE(received("other:x"));
  // Commands still work next to the subscriber connection.
  EXPECT_FALSE(run(c, {"SET", "after", "1"}).ec);
}

TEST_F(RedisClientTest, AuthAndSelect) {
  RedisServer server({"--requirepass", "s3cret"});
  server.set_password("s3cret");
  ASSERT_TRUE(server.start());
  config::RedisConfig cfg = redis_config(server);
  cfg.password = "s3cret";
  cfg.db = 3;
  std::atomic<int> messages{0};
  RedisClient c(cfg, {});
  c.subscribe("ch", [&](std::string_view) { ++messages; });  // the subscriber AUTHs too
  c.start();
  ASSERT_TRUE(c.wait_connected(10s));
  Result r = run(c, {"CLIENT", "INFO"});
  ASSERT_FALSE(r.ec);
  EXPECT_NE(r.reply.str.find(" db=3 "), std::string::npos) << r.reply.str;
  server.cli({"PUBLISH", "ch", "m"});
  EXPECT_TRUE(eventually([&] { return messages.load() == 1; }, 5s));

  LogLines log;
  config::RedisConfig wrong = cfg;
  wrong.password = "nope";
  RedisClient bad(wrong, log.sink());
  bad.start();
  EXPECT_FALSE(bad.wait_connected(1500ms));
  EXPECT_EQ(log.count("E "), 1u) << log.dump();
  EXPECT_NE(log.dump().find("AUTH"), std::string::npos) << log.dump();
}

TEST_F(RedisClientTest, StopFailsPendingAndIsIdempotent) {
  ASSERT_TRUE(server_.start());
  LogLines log;
  auto c = std::make_unique<RedisClient>(redis_config(server_), log.sink());
  c->start();
  ASSERT_TRUE(c->wait_connected(10s));
  server_.pause();
  std::promise<boost::system::error_code> p;
  c->command({"PING"}, [&](boost::system::error_code ec, const RedisReply&) { p.set_value(ec); });
  std::this_thread::sleep_for(20ms);
  c->stop();
  c->stop();
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(f.get(), boost::asio::error::operation_aborted);
  c.reset();
  server_.resume();
}

// stop() runs the on_stop functions on the client thread, so a user's timer
// cancelled there completes before the thread ends; never without start().
TEST_F(RedisClientTest, StopRunsStopFunctionsBeforeTheThreadEnds) {
  ASSERT_TRUE(server_.start());
  auto c = std::make_unique<RedisClient>(redis_config(server_), nullptr);
  boost::asio::steady_timer timer(c->io());
  bool on_client_thread = false;
  boost::system::error_code timer_ec;
  bool timer_done = false;
  c->on_stop([&] {
    on_client_thread = c->io().get_executor().running_in_this_thread();
    timer.cancel();
  });
  c->start();
  ASSERT_TRUE(c->wait_connected(10s));
  boost::asio::post(c->io(), [&] {
    timer.expires_after(std::chrono::hours(1));
    timer.async_wait([&](boost::system::error_code ec) {
      timer_ec = ec;
      timer_done = true;
    });
  });
  c->stop();  // joined: what the thread wrote is visible here
  EXPECT_TRUE(on_client_thread);
  EXPECT_TRUE(timer_done);
  EXPECT_EQ(timer_ec, boost::asio::error::operation_aborted);

  bool ran = false;
  RedisClient never(redis_config(server_), nullptr);
  never.on_stop([&] { ran = true; });
  never.stop();
  EXPECT_FALSE(ran);
}

// A master, a replica and a sentinel: the client finds the master through
// the sentinel and follows the failover when the master dies.
TEST_F(RedisClientTest, FollowsASentinelFailover) {
  RedisServer& master = server_;
  ASSERT_TRUE(master.start());
  RedisServer replica({"--replicaof", "127.0.0.1", std::to_string(master.port())});
  ASSERT_TRUE(replica.start());
  ASSERT_TRUE(eventually([&] {
    auto info = replica.cli({"INFO", "replication"});
    return info && info->str.find("master_link_status:up") != std::string::npos;
  }, 15s));
  RedisServer sentinel({}, true);
  sentinel.write_sentinel_conf("mymaster", master.port());
  ASSERT_TRUE(sentinel.start());
  ASSERT_TRUE(eventually([&] {
    auto r = sentinel.cli({"SENTINEL", "replicas", "mymaster"});
    return r && r->type == Type::kArray && r->elements.size() == 1;
  }, 20s)) << "the sentinel did not discover the replica";

  config::RedisConfig cfg;
  // The first sentinel is gone: the next one is asked.
  cfg.sentinel_addresses = {"127.0.0.1:" + std::to_string(testing::free_port()), sentinel.address()};
  cfg.sentinel_master = "mymaster";
  cfg.timeout = config::Duration(200);
  LogLines log;
  RedisClient c(cfg, log.sink());
  c.start();
  ASSERT_TRUE(c.wait_connected(10s)) << log.dump();
  auto port_of = [&] {
    Result r = run(c, {"CONFIG", "GET", "port"}, 2s);
    return !r.ec && r.reply.elements.size() == 2 ? r.reply.elements[1].str : std::string();
  };
  EXPECT_EQ(port_of(), std::to_string(master.port()));
  ASSERT_FALSE(run(c, {"SET", "before", "1"}).ec);
  // Replication is asynchronous: a write the replica never got is lost in
  // any failover, so the test waits for it before killing the master.
  ASSERT_TRUE(eventually([&] {
    auto v = replica.cli({"GET", "before"});
    return v && v->str == "1";
  }, 10s));

  master.kill();
  EXPECT_TRUE(eventually([&] { return port_of() == std::to_string(replica.port()); }, 40s)) << log.dump();
  Result r = run(c, {"SET", "after", "2"});
  EXPECT_FALSE(r.ec);
  EXPECT_EQ(r.reply.type, Type::kStatus) << r.reply.str;  // a master: writes accepted
  EXPECT_EQ(run(c, {"GET", "before"}).reply.str, "1");
  c.stop();
}

}  // namespace
}  // namespace sag::redis
