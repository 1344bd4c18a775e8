// SharedAdminState against a real redis-server, started by each test on a
// free loopback port (tests/config/redis/redis_test_support.h; the test
// fails when redis-server is not installed).
#include "affinity/store/shared_admin_state.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/redis/redis_client.h"
#include "tests/config/redis/redis_test_support.h"

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;
namespace testing = redis::testing;
using redis::RedisClient;
using redis::RedisReply;
using testing::eventually;
using testing::RedisServer;

config::GatewayConfig gateway_config(const std::vector<std::string>& servers) {
  config::GatewayConfig gc;
  config::BackendConfig b;
  b.name = "app";
  uint16_t port = 9001;
  for (const auto& n : servers) {
    config::ServerConfig s;
    s.name = n;
    s.address = "127.0.0.1:" + std::to_string(port++);
    s.endpoint = config::Endpoint::parse(s.address).value_or(config::Endpoint{});
    b.servers.push_back(s);
  }
  gc.backends.push_back(b);
  return gc;
}

// A replica's view: its own backends, Redis client and SharedAdminState.
class Replica {
 public:
  Replica(const RedisServer& redis, SharedAdminState::Options options,
          std::vector<std::string> servers = {"s1", "s2"})
      : config_(gateway_config(servers)), backends_(config_) {
    client_ = std::make_unique<RedisClient>(testing::redis_config(redis, options.key_prefix), nullptr);
    shared_ = std::make_unique<SharedAdminState>(*client_, backends_, std::move(options), nullptr);
  }
  ~Replica() {
    client_->stop();  // first: no callback may run once shared_ is gone
    shared_.reset();
  }
  void start() {
    client_->start();
    shared_->start();
  }

  Backend& backend() { return *backends_.find("app"); }
  Server& server(const std::string& name) { return *backend().find_server(name); }
  // What the admin API does on a PUT.
  void admin_set(const std::string& name, std::optional<AdminState> state, std::optional<uint32_t> weight) {
    Server& s = server(name);
    const AdminState st = state.value_or(s.admin_state());
    const uint32_t w = weight.value_or(s.weight());
    s.apply_admin(st, w, std::chrono::steady_clock::now());
    shared_->server_changed(backend(), s, st, w);
  }
  SharedAdminState& shared() { return *shared_; }
  RedisClient& client() { return *client_; }

 private:
  config::GatewayConfig config_;
  BackendSet backends_;
  std::unique_ptr<RedisClient> client_;
  std::unique_ptr<SharedAdminState> shared_;
};

class SharedAdminStateTest : public testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    prefix_ = std::string("t:") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + ":";
  }
  SharedAdminState::Options options(std::chrono::milliseconds poll = 60s) const {
    SharedAdminState::Options o;
    o.key_prefix = prefix_;
    o.poll_interval = poll;
    return o;
  }
  std::unique_ptr<Replica> replica(SharedAdminState::Options o, std::vector<std::string> servers = {"s1", "s2"}) {
    auto r = std::make_unique<Replica>(server_, std::move(o), std::move(servers));
    r->start();
    return r;
  }

  std::string prefix_;
};

TEST_F(SharedAdminStateTest, AdminChangeReachesOtherReplicaWithinOneSecond) {
  auto a = replica(options());
  auto b = replica(options());
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  ASSERT_EQ(b->server("s1").admin_state(), AdminState::kReady);

  a->admin_set("s1", AdminState::kDrain, std::nullopt);
  EXPECT_TRUE(eventually([&] { return b->server("s1").admin_state() == AdminState::kDrain; }, 1s));
  a->admin_set("s2", std::nullopt, 40);
  EXPECT_TRUE(eventually([&] { return b->server("s2").weight() == 40u; }, 1s));
  // The other way round, and back to ready.
  b->admin_set("s1", AdminState::kReady, 7);
  EXPECT_TRUE(eventually(
      [&] { return a->server("s1").admin_state() == AdminState::kReady && a->server("s1").weight() == 7u; },
      1s));
  EXPECT_EQ(b->server("s1").admin_state(), AdminState::kReady);  // its own echo changed nothing
  EXPECT_EQ(b->server("s2").admin_state(), AdminState::kReady);

  auto h = cli({"HGETALL", prefix_ + "admin:app:s2"});
  ASSERT_EQ(h.type, RedisReply::Type::kArray);
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < h.elements.size(); i += 2) fields[h.elements[i].str] = h.elements[i + 1].str;
  EXPECT_EQ(fields["state"], "ready");
  EXPECT_EQ(fields["weight"], "40");
  EXPECT_EQ(fields.size(), 2u);  // nothing else is written
  EXPECT_GE(b->shared().applied(), 2u);
}

// A reply to a read sent before a PUT may be applied to the Server after
// the PUT set it and before the hook runs: the hook's values win, here, in
// Redis and on the other replica.
TEST_F(SharedAdminStateTest, AStaleReadAppliedBeforeTheHookCannotUndoAChange) {
  auto a = replica(options());
  auto b = replica(options());
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  Server& s1 = a->server("s1");
  const auto now = std::chrono::steady_clock::now();
  s1.apply_admin(AdminState::kDrain, 30u, now);   // the PUT
  s1.apply_admin(AdminState::kReady, 100u, now);  // the stale reply (what Redis had)
  a->shared().server_changed(a->backend(), s1, AdminState::kDrain, 30);  // the hook
  EXPECT_EQ(s1.admin_state(), AdminState::kDrain);  // in place when it returns
  EXPECT_EQ(s1.weight(), 30u);
  EXPECT_TRUE(eventually(
      [&] { return b->server("s1").admin_state() == AdminState::kDrain && b->server("s1").weight() == 30u; },
      1s));
  EXPECT_EQ(cli({"HGET", prefix_ + "admin:app:s1", "state"}).str, "drain");
  EXPECT_EQ(cli({"HGET", prefix_ + "admin:app:s1", "weight"}).str, "30");
  std::this_thread::sleep_for(200ms);  // A's own re-read after the announcement changes nothing
  EXPECT_EQ(s1.admin_state(), AdminState::kDrain);
  EXPECT_EQ(s1.weight(), 30u);
}

TEST_F(SharedAdminStateTest, AdminStateLoadedAtStart) {
  {
    auto a = replica(options());
    ASSERT_TRUE(a->shared().wait_loaded(5s));
    a->admin_set("s2", AdminState::kMaint, 55);
      ASSERT_TRUE(eventually(
        [&] { return cli({"HGET", prefix_ + "admin:app:s2", "state"}).str == "maint"; }, 5s));
  }
  // A replica started afterwards has it once loaded, before any traffic.
  auto b = replica(options());
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  EXPECT_EQ(b->server("s2").admin_state(), AdminState::kMaint);
  EXPECT_EQ(b->server("s2").weight(), 55u);
  EXPECT_EQ(b->server("s1").admin_state(), AdminState::kReady);
  EXPECT_EQ(b->server("s1").weight(), 100u);
}

// A change that reached Redis without an announcement (a lost message) is
// picked up by the periodic re-read.
TEST_F(SharedAdminStateTest, MissedMessageConvergesByPolling) {
  auto b = replica(options(300ms));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  ASSERT_EQ(cli({"HSET", prefix_ + "admin:app:s1", "state", "drain", "weight", "3"}).type,
            RedisReply::Type::kInteger);
  EXPECT_TRUE(eventually(
      [&] { return b->server("s1").admin_state() == AdminState::kDrain && b->server("s1").weight() == 3u; },
      5s));
  // Garbage is ignored, field by field.
  ASSERT_EQ(cli({"HSET", prefix_ + "admin:app:s2", "state", "broken", "weight", "9"}).type,
            RedisReply::Type::kInteger);
  EXPECT_TRUE(eventually([&] { return b->server("s2").weight() == 9u; }, 5s));
  EXPECT_EQ(b->server("s2").admin_state(), AdminState::kReady);
  ASSERT_EQ(cli({"HSET", prefix_ + "admin:app:s2", "weight", "100000"}).type, RedisReply::Type::kInteger);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(b->server("s2").weight(), 9u);
}

// Only servers of the local config are touched.
TEST_F(SharedAdminStateTest, UnknownServersAreIgnored) {
  auto a = replica(options(), {"s1", "s2", "s3"});
  auto b = replica(options(300ms));
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  a->admin_set("s3", AdminState::kMaint, 1);
  cli({"PUBLISH", prefix_ + "admin", "nosuch\ns1"});
  cli({"PUBLISH", prefix_ + "admin", "garbage"});
  a->admin_set("s1", AdminState::kDrain, std::nullopt);  // a marker that b did get messages
  EXPECT_TRUE(eventually([&] { return b->server("s1").admin_state() == AdminState::kDrain; }, 1s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(b->shared().applied(), 1u);
  EXPECT_EQ(b->server("s2").admin_state(), AdminState::kReady);
  EXPECT_EQ(b->server("s2").weight(), 100u);
}

// Redis stalls (SIGSTOP): a change made meanwhile stays in place locally
// (the re-read after reconnecting must not undo it), is written when Redis
// answers again, and reaches the other replica.
TEST_F(SharedAdminStateTest, ChangeDuringOutageIsWrittenBack) {
  auto a = replica(options());
  auto b = replica(options());
  ASSERT_TRUE(a->shared().wait_loaded(5s));
  ASSERT_TRUE(b->shared().wait_loaded(5s));
  a->admin_set("s1", AdminState::kMaint, std::nullopt);
  ASSERT_TRUE(eventually([&] { return b->server("s1").admin_state() == AdminState::kMaint; }, 1s));

  server_.pause();
  // The write times out (200 ms) and takes A's connection down.
  a->admin_set("s1", AdminState::kDrain, 20);
  ASSERT_TRUE(eventually([&] { return !a->client().connected(); }, 10s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(b->server("s1").admin_state(), AdminState::kMaint);
  EXPECT_EQ(a->server("s1").admin_state(), AdminState::kDrain);
  server_.resume();

  ASSERT_TRUE(eventually([&] { return a->client().connected() && b->client().connected(); }, 10s));
  EXPECT_TRUE(eventually(
      [&] { return b->server("s1").admin_state() == AdminState::kDrain && b->server("s1").weight() == 20u; },
      5s));
  EXPECT_EQ(a->server("s1").admin_state(), AdminState::kDrain);
  EXPECT_EQ(a->server("s1").weight(), 20u);
  EXPECT_EQ(cli({"HGET", prefix_ + "admin:app:s1", "state"}).str, "drain");
}

}  // namespace
}  // namespace sag::affinity
