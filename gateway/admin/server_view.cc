#include "gateway/admin/server_view.h"

#include <charconv>

namespace sag::gateway::admin {

std::string last_check_text(const LastCheck& last_check, const affinity::Server& s) {
  if (!last_check) return "-";
  std::string t = last_check(s);
  return t.empty() ? "-" : t;
}

std::array<uint64_t, 5> response_classes(const affinity::Server& s) {
  std::array<uint64_t, 5> n{};
  for (unsigned st = 100; st < 600; ++st) n[st / 100 - 1] += s.responses(st);
  return n;
}

void append_u64(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_i64(std::string& out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace sag::gateway::admin
