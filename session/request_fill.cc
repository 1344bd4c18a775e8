#include "session/request_fill.h"

#include <cstring>

#include "config/base/token_list.h"

namespace sag::session {

namespace {

// The line starting at `pos` without its CRLF; `pos` moves past it.
std::string_view next_line(std::string_view d, size_t& pos) {
  const char* start = d.data() + pos;
  const void* lf = std::memchr(start, '\n', d.size() - pos);
  const size_t end = lf ? static_cast<size_t>(static_cast<const char*>(lf) - d.data()) : d.size();
  std::string_view line = d.substr(pos, end - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos = end + 1;
  return line;
}

}  // namespace

void fill_request(std::string_view head, bool http10, RequestHeader& req) {
  size_t pos = 0;
  std::string_view line = next_line(head, pos);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return;
  req.method_string(line.substr(0, sp1));
  req.target(line.substr(sp1 + 1, sp2 - sp1 - 1));
  req.version(http10 ? 10 : 11);
  while (pos < head.size()) {
    line = next_line(head, pos);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    req.insert(field_of(name), name, base::trim_blanks(line.substr(colon + 1)));
  }
}

}  // namespace sag::session
