// The `health_check.type: redis` conversation (SPEC §8), as bytes: what to
// send and how to judge the replies. HealthChecker runs it on a fresh
// connection each interval.
//
//   [AUTH password] PING [ROLE]   pipelined in one write
//   INFO replication              only when ROLE was refused (old servers)
//
// A success needs +OK to AUTH, +PONG to PING and, with a wanted role, that
// role. A reply with another role fails at once (no waiting for the timeout).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "config/gateway_config.h"

namespace sag::gateway {

// One RESP reply, as far as a check needs it.
struct RespReply {
  char type = 0;     // '+', '-', ':', '$' or '*'
  std::string text;  // a simple string, error or bulk string; for an array, its first element's
};

// Parses the reply at the start of `in`: its length in bytes, 0 when `in`
// holds only part of it, or nullopt when it is not RESP.
std::optional<size_t> parse_resp(std::string_view in, RespReply& out);

class RedisCheck {
 public:
  enum class Verdict { kNeedMore, kUp, kDown, kAskInfo };

  RedisCheck(const std::string& password, config::RedisRole role) : password_(password), role_(role) {}

  // The first write.
  std::string request() const;
  // The write after kAskInfo.
  static std::string_view info_request() { return "INFO replication\r\n"; }
  // Judges what arrived so far (everything read since the first write; after
  // kAskInfo, only what came after the second). `why` gets the reason for
  // kUp ("PONG, role master") or kDown ("role replica, want master").
  Verdict judge(std::string_view replies, std::string& why);
  Verdict judge_info(std::string_view reply, std::string& why) const;

 private:
  // "master", "replica" or the server's own word; true for a role it has.
  bool wanted(std::string_view role) const;

  std::string password_;
  config::RedisRole role_;
};

}  // namespace sag::gateway
