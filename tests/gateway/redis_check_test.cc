// The redis health check's replies (gateway/redis_check.h): PONG, AUTH,
// ROLE, INFO replication, errors and replies that arrive in pieces.
#include "gateway/redis_check.h"

#include <gtest/gtest.h>

#include <string>

namespace sag::gateway {
namespace {

using V = RedisCheck::Verdict;
using config::RedisRole;

TEST(RespParse, EveryTypeAndIncompleteAndGarbage) {
  RespReply r;
  EXPECT_EQ(parse_resp("+PONG\r\n", r), 7u);
  EXPECT_EQ(r.type, '+');
  EXPECT_EQ(r.text, "PONG");
  EXPECT_EQ(parse_resp("$5\r\nhello\r\n+OK\r\n", r), 11u);
  EXPECT_EQ(r.text, "hello");
  EXPECT_EQ(parse_resp("*3\r\n$6\r\nmaster\r\n:3129\r\n*0\r\n", r), 27u);
  EXPECT_EQ(r.type, '*');
  EXPECT_EQ(r.text, "master");
  EXPECT_EQ(parse_resp("$5\r\nhel", r), 0u);
  EXPECT_EQ(parse_resp("*2\r\n$5\r\nslave\r\n", r), 0u);
  EXPECT_EQ(parse_resp("+PON", r), 0u);
  EXPECT_FALSE(parse_resp("HTTP/1.1 200 OK\r\n", r));
  EXPECT_FALSE(parse_resp("$-5\r\n", r));
  EXPECT_FALSE(parse_resp("$3\r\nabcd\r\n", r));
  EXPECT_FALSE(parse_resp("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n+x\r\n", r)) << "too deep";
}

TEST(RedisCheck, PingAlone) {
  RedisCheck c("", RedisRole::kAny);
  EXPECT_EQ(c.request(), "PING\r\n");
  std::string why;
  EXPECT_EQ(c.judge("+PO", why), V::kNeedMore);
  EXPECT_EQ(c.judge("+PONG\r\n", why), V::kUp);
  EXPECT_EQ(c.judge("-LOADING Redis is loading the dataset in memory\r\n", why), V::kDown);
  EXPECT_EQ(why, "PING answered -LOADING Redis is loading the dataset in memory");
  EXPECT_EQ(c.judge("garbage\r\n", why), V::kDown);
}

TEST(RedisCheck, AuthThenPingThenRole) {
  RedisCheck c("s3cret", RedisRole::kMaster);
  EXPECT_EQ(c.request(), "*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\nPING\r\nROLE\r\n");
  std::string why;
  EXPECT_EQ(c.judge("-WRONGPASS invalid username-password pair\r\n", why), V::kDown);
  EXPECT_EQ(why, "AUTH refused: WRONGPASS invalid username-password pair");
  const std::string ok = "+OK\r\n+PONG\r\n";
  EXPECT_EQ(c.judge(ok, why), V::kNeedMore);
  EXPECT_EQ(c.judge(ok + "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n", why), V::kUp);
  EXPECT_EQ(why, "PONG, role master");
  // A replica when a master is wanted fails at once.
  EXPECT_EQ(c.judge(ok + "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:1\r\n", why),
            V::kDown);
  EXPECT_EQ(why, "role slave, want master");
}

TEST(RedisCheck, ReplicaWantedAndRoleRefusedFallsBackToInfo) {
  RedisCheck c("", RedisRole::kReplica);
  std::string why;
  EXPECT_EQ(c.judge("+PONG\r\n*5\r\n$5\r\nslave\r\n$1\r\nh\r\n:1\r\n$9\r\nconnected\r\n:1\r\n", why), V::kUp);
  EXPECT_EQ(c.judge("+PONG\r\n-ERR unknown command 'ROLE'\r\n", why), V::kAskInfo);
  EXPECT_EQ(c.judge_info("$40\r\n# Replication\r\nrole:slave\r\nmaster_h", why), V::kNeedMore);
  const std::string info = "# Replication\r\nrole:slave\r\nmaster_host:h\r\n";
  EXPECT_EQ(c.judge_info("$" + std::to_string(info.size()) + "\r\n" + info + "\r\n", why), V::kUp);
  const std::string master = "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n";
  EXPECT_EQ(c.judge_info("$" + std::to_string(master.size()) + "\r\n" + master + "\r\n", why), V::kDown);
  EXPECT_EQ(why, "role master, want replica");
}

}  // namespace
}  // namespace sag::gateway
