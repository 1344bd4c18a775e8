// A response head as nghttp2 takes it, built in buffers the session reuses:
// nghttp2 copies the list when it is submitted, so one list serves every
// stream of a connection without allocating once warm.
//
// Thread: the connection's worker.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sag::session {

class HeadList {
 public:
  // Starts a new head with its :status.
  void start(unsigned status);
  // `name` is lowercased (HTTP/2 field names are lowercase).
  void add(std::string_view name, std::string_view value);
  // Adds each "Name: value\r\n" line of `lines` (as the gateway's own
  // answers carry extra fields); a line without a colon is skipped.
  void add_lines(std::string_view lines);
  // The list; valid until the next start() or add().
  const nghttp2_nv* nva();
  size_t size() const { return spans_.size(); }

 private:
  struct Span {
    size_t at, name, value;
  };
  std::string text_;
  std::vector<Span> spans_;
  std::vector<nghttp2_nv> nva_;
};

}  // namespace sag::session
