// The announcement a RedisAffinityStore publishes on `<prefix>affinity` with
// each write (in the same script, so announcements come in the order Redis
// applied the writes), and every other replica applies to its local copy:
//   "<op> <origin> <px> <redis key>[ <server name>]"
// op: C a change (set unconditionally), R a TTL refresh (set only while the
// key still names that server), D a delete (px "0", no server name);
// origin: the writer's random id (a replica ignores its own); px: the TTL
// in ms, "0" for none; the key as RedisKeyCodec::encode() makes it; the
// server by NAME (ServerId order differs between replicas' configs).
// Replicas of different versions share this format during a rolling
// upgrade: it does not change.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sag::affinity {

struct RedisReplicationMessage {
  static constexpr char kChange = 'C';
  static constexpr char kRefresh = 'R';
  static constexpr char kDelete = 'D';

  // Views into the payload given to parse().
  char op = kChange;
  std::string_view origin;
  std::string_view px;
  std::string_view redis_key;
  std::string_view server;  // everything after the key's space; empty for D

  // nullopt: fewer than four fields, or an op other than C, R, D.
  static std::optional<RedisReplicationMessage> parse(std::string_view payload);
  // A delete: format(kDelete, origin, "0", key, {}) (no server field).
  static std::string format(char op, std::string_view origin, std::string_view px, std::string_view redis_key,
                            std::string_view server);
  // px as a number of ms; nullopt when it is not decimal digits or past
  // about 2^40 ms (34 years). Empty: 0.
  static std::optional<int64_t> parse_px(std::string_view px);
};

}  // namespace sag::affinity
