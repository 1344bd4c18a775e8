#include "session/head_writer.h"

#include <cstring>
#include <string_view>

namespace sag::session {
namespace {

class Out {
 public:
  Out(char* p, size_t cap) : begin_(p), p_(p), end_(p + cap) {}
  void put(std::string_view s) {
    if (static_cast<size_t>(end_ - p_) < s.size()) {
      ok_ = false;
      return;
    }
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void put(char c) {
    if (p_ == end_) {
      ok_ = false;
      return;
    }
    *p_++ = c;
  }
  size_t done() const { return ok_ ? static_cast<size_t>(p_ - begin_) : 0; }

 private:
  char* begin_;
  char* p_;
  char* end_;
  bool ok_ = true;
};

void put_fields(Out& o, const Fields& fields) {
  for (const auto& f : fields) o.put(f.line());
  o.put("\r\n");
}

bool known_version(unsigned v) { return v == 10 || v == 11; }

}  // namespace

size_t write_head(const RequestHeader& h, char* out, size_t cap) {
  if (!known_version(h.version())) return 0;
  Out o(out, cap);
  o.put(h.method_string());
  if (!h.target().empty()) {  // Beast stores the target with its leading space
    o.put(' ');
    o.put(h.target());
  }
  o.put(h.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  put_fields(o, h);
  return o.done();
}

size_t write_head(const ResponseHeader& h, char* out, size_t cap) {
  const unsigned code = h.result_int();
  if (!known_version(h.version()) || code > 999) return 0;
  Out o(out, cap);
  o.put(h.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  o.put(static_cast<char>('0' + code / 100));
  o.put(static_cast<char>('0' + code / 10 % 10));
  o.put(static_cast<char>('0' + code % 10));
  o.put(' ');
  // reason(): the one received, or the status's standard text, as Beast's
  // serializer writes it.
  o.put(h.reason());
  o.put("\r\n");
  put_fields(o, h);
  return o.done();
}

}  // namespace sag::session
