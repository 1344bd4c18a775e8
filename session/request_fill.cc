#include "session/request_fill.h"

#include <algorithm>
#include <cstring>

#include "config/base/token_list.h"

namespace sag::session {

namespace {

// The line starting at `pos` without its line end; `pos` moves past it.
// `crlf`: the line ended in CRLF (always so after the scan).
std::string_view next_line(std::string_view d, size_t& pos, bool& crlf) {
  const char* start = d.data() + pos;
  const void* lf = std::memchr(start, '\n', d.size() - pos);
  const size_t end = lf ? static_cast<size_t>(static_cast<const char*>(lf) - d.data()) : d.size();
  std::string_view line = d.substr(pos, end - pos);
  crlf = lf != nullptr && !line.empty() && line.back() == '\r';
  if (crlf) line.remove_suffix(1);
  pos = end + 1;
  return line;
}

}  // namespace

void fill_request(std::string_view head, bool http10, RequestHeader& req) {
  size_t pos = 0;
  bool crlf = false;
  std::string_view line = next_line(head, pos, crlf);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return;
  req.method_string(line.substr(0, sp1));
  req.target(line.substr(sp1 + 1, sp2 - sp1 - 1));
  req.version(http10 ? 10 : 11);
  // A field written "Name: value\r\n" is filed where it lies and the
  // fields' lines are copied once at the end (as ResponseReader does);
  // any other spelling (no space, extra blanks) is stored on its own.
  const size_t fields_at = std::min(pos, head.size());
  size_t fields_end = fields_at;
  while (pos < head.size()) {
    line = next_line(head, pos, crlf);
    if (line.empty()) break;
    fields_end = std::min(pos, head.size());
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = base::trim_blanks(line.substr(colon + 1));
    const char* after_space = line.data() + colon + 2;
    const bool in_place =
        crlf && colon + 2 <= line.size() && line[colon + 1] == ' ' &&
        (value.empty() ? line.size() == colon + 2
                       : value.data() == after_space &&
                             value.data() + value.size() == line.data() + line.size());
    if (in_place) {
      req.append_stored(field_of(name), name, {after_space, value.size()});
    } else {
      req.insert(field_of(name), name, value);
    }
  }
  req.adopt_input(head.substr(fields_at, fields_end - fields_at));
}

}  // namespace sag::session
