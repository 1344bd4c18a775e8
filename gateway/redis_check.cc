#include "gateway/redis_check.h"

#include <charconv>

namespace sag::gateway {

namespace {

constexpr size_t kMaxDepth = 4;
constexpr int64_t kMaxLength = 1 << 20;

// The line at `in` (without CRLF) and the length with it; 0 when incomplete.
size_t line_of(std::string_view in, std::string_view& line) {
  const size_t end = in.find("\r\n");
  if (end == std::string_view::npos) return 0;
  line = in.substr(0, end);
  return end + 2;
}

std::optional<int64_t> number(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<size_t> parse_at(std::string_view in, RespReply& out, size_t depth) {
  if (in.empty()) return 0;
  std::string_view line;
  const size_t head = line_of(in, line);
  if (head == 0) return in.size() > 64 * 1024 ? std::nullopt : std::optional<size_t>(0);
  const char type = line[0];
  const std::string_view rest = line.substr(1);
  out.type = type;
  switch (type) {
    case '+':
    case '-':
    case ':':
      out.text = std::string(rest);
      return head;
    case '$': {
      const auto n = number(rest);
      if (!n || *n < -1 || *n > kMaxLength) return std::nullopt;
      if (*n == -1) {
        out.text.clear();
        return head;
      }
      const size_t need = head + static_cast<size_t>(*n) + 2;
      if (in.size() < need) return 0;
      if (in.substr(need - 2, 2) != "\r\n") return std::nullopt;
      out.text = std::string(in.substr(head, static_cast<size_t>(*n)));
      return need;
    }
    case '*': {
      const auto n = number(rest);
      if (!n || *n < -1 || *n > 1024 || depth >= kMaxDepth) return std::nullopt;
      size_t at = head;
      out.text.clear();
      for (int64_t i = 0; i < *n; ++i) {
        RespReply element;
        const auto len = parse_at(in.substr(at), element, depth + 1);
        if (!len || *len == 0) return len;
        if (i == 0) out.text = element.text;
        at += *len;
      }
      out.type = '*';
      return at;
    }
    default:
      return std::nullopt;
  }
}

RedisCheck::Verdict down(std::string& why, std::string text) {
  why = std::move(text);
  return RedisCheck::Verdict::kDown;
}

}  // namespace

std::optional<size_t> parse_resp(std::string_view in, RespReply& out) { return parse_at(in, out, 0); }

std::string RedisCheck::request() const {
  std::string out;
  if (!password_.empty()) {
    out += "*2\r\n$4\r\nAUTH\r\n$" + std::to_string(password_.size()) + "\r\n";
    out += password_;
    out += "\r\n";
  }
  out += "PING\r\n";
  if (role_ != config::RedisRole::kAny) out += "ROLE\r\n";
  return out;
}

bool RedisCheck::wanted(std::string_view role) const {
  switch (role_) {
    case config::RedisRole::kAny: return true;
    case config::RedisRole::kMaster: return role == "master";
    case config::RedisRole::kReplica: return role == "slave" || role == "replica";
  }
  return false;
}

RedisCheck::Verdict RedisCheck::judge(std::string_view replies, std::string& why) {
  size_t at = 0;
  RespReply r;
  const auto next = [&]() -> std::optional<size_t> {
    const auto len = parse_resp(replies.substr(at), r);
    if (len && *len) at += *len;
    return len;
  };
  if (!password_.empty()) {
    const auto len = next();
    if (!len) return down(why, "not a Redis reply");
    if (*len == 0) return Verdict::kNeedMore;
    if (r.type != '+' || r.text != "OK") return down(why, "AUTH refused: " + r.text);
  }
  auto len = next();
  if (!len) return down(why, "not a Redis reply");
  if (*len == 0) return Verdict::kNeedMore;
  if (r.type != '+' || r.text != "PONG") return down(why, "PING answered " + std::string(1, r.type) + r.text);
  if (role_ == config::RedisRole::kAny) {
    why = "PONG";
    return Verdict::kUp;
  }
  len = next();
  if (!len) return down(why, "not a Redis reply");
  if (*len == 0) return Verdict::kNeedMore;
  if (r.type == '-') return Verdict::kAskInfo;  // no ROLE (Redis before 2.8.12)
  if (r.type != '*') return down(why, "ROLE answered " + std::string(1, r.type) + r.text);
  if (!wanted(r.text)) {
    why = "role " + r.text + ", want " + (role_ == config::RedisRole::kMaster ? "master" : "replica");
    return Verdict::kDown;
  }
  why = "PONG, role " + r.text;
  return Verdict::kUp;
}

RedisCheck::Verdict RedisCheck::judge_info(std::string_view reply, std::string& why) const {
  RespReply r;
  const auto len = parse_resp(reply, r);
  if (!len) return down(why, "not a Redis reply");
  if (*len == 0) return Verdict::kNeedMore;
  if (r.type != '$') return down(why, "INFO answered " + std::string(1, r.type) + r.text);
  const size_t at = r.text.find("role:");
  if (at == std::string::npos) return down(why, "INFO replication has no role");
  const size_t end = r.text.find_first_of("\r\n", at);
  const std::string role = r.text.substr(at + 5, end == std::string::npos ? std::string::npos : end - at - 5);
  if (!wanted(role)) {
    why = "role " + role + ", want " + (role_ == config::RedisRole::kMaster ? "master" : "replica");
    return Verdict::kDown;
  }
  why = "PONG, role " + role;
  return Verdict::kUp;
}

}  // namespace sag::gateway
