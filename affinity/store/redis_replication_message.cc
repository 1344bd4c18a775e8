#include "affinity/store/redis_replication_message.h"

#include <cstring>

namespace sag::affinity {

std::optional<RedisReplicationMessage> RedisReplicationMessage::parse(std::string_view payload) {
  std::string_view f[4];
  for (int i = 0; i < 4; ++i) {
    const size_t sp = payload.find(' ');
    if (sp == std::string_view::npos) {
      if (i < 3) return std::nullopt;
      f[i] = payload;
      payload = {};
    } else {
      f[i] = payload.substr(0, sp);
      payload.remove_prefix(sp + 1);
    }
  }
  if (f[0].size() != 1 || std::strchr("CRD", f[0][0]) == nullptr) return std::nullopt;
  RedisReplicationMessage m;
  m.op = f[0][0];
  m.origin = f[1];
  m.px = f[2];
  m.redis_key = f[3];
  m.server = payload;
  return m;
}

std::string RedisReplicationMessage::format(char op, std::string_view origin, std::string_view px,
                                            std::string_view redis_key, std::string_view server) {
  std::string out;
  out.reserve(4 + origin.size() + px.size() + redis_key.size() + server.size());
  out += op;
  out += ' ';
  out += origin;
  out += ' ';
  out += px;
  out += ' ';
  out += redis_key;
  if (op != kDelete) {
    out += ' ';
    out += server;
  }
  return out;
}

std::optional<int64_t> RedisReplicationMessage::parse_px(std::string_view px) {
  int64_t v = 0;
  for (char c : px) {
    if (c < '0' || c > '9' || v > (int64_t{1} << 40)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace sag::affinity
