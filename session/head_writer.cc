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

// Lines that lie back to back in the fields' storage (a parsed head's
// fields, adopted with one copy of the input, and fields appended in a row)
// go out as one span: a head is a few copies, not one per field. A span is
// exact bytes of whole lines, so joining them changes nothing written.
void put_fields(Out& o, const Fields& fields) {
  const char* run = nullptr;
  size_t run_size = 0;
  for (const auto& f : fields) {
    const std::string_view line = f.line();
    if (run != nullptr && run + run_size == line.data()) {
      run_size += line.size();
      continue;
    }
    if (run != nullptr) o.put({run, run_size});
    run = line.data();
    run_size = line.size();
  }
  if (run != nullptr) o.put({run, run_size});
  o.put("\r\n");
}

// "HTTP/x.y", as Beast writes any version.
void put_version(Out& o, unsigned version) {
  o.put("HTTP/");
  o.put(static_cast<char>('0' + version / 10 % 10));
  o.put('.');
  o.put(static_cast<char>('0' + version % 10));
}

}  // namespace

size_t write_request_head(std::string_view method, std::string_view target, unsigned version,
                          const Fields& fields, char* out, size_t cap) {
  Out o(out, cap);
  o.put(method);
  if (!target.empty()) {  // (as Beast: no space for an empty target)
    o.put(' ');
    o.put(target);
  }
  o.put(' ');
  put_version(o, version);
  o.put("\r\n");
  put_fields(o, fields);
  return o.done();
}

size_t write_response_head(unsigned status, std::string_view reason, unsigned version,
                           const Fields& fields, char* out, size_t cap) {
  Out o(out, cap);
  put_version(o, version);
  o.put(' ');
  o.put(static_cast<char>('0' + status / 100 % 10));
  o.put(static_cast<char>('0' + status / 10 % 10));
  o.put(static_cast<char>('0' + status % 10));
  o.put(' ');
  o.put(reason);
  o.put("\r\n");
  put_fields(o, fields);
  return o.done();
}

size_t head_size_bound(std::string_view first, std::string_view second, const Fields& fields) {
  size_t n = first.size() + second.size() + 32;  // spaces, version, status, CRLFs
  for (const auto& f : fields) n += f.line().size();
  return n;
}

size_t write_head(const RequestHeader& h, char* out, size_t cap) {
  return write_request_head(h.method_string(), h.target(), h.version(), h, out, cap);
}

size_t write_head(const ResponseHeader& h, char* out, size_t cap) {
  // reason(): the one received, or the status's standard text.
  return write_response_head(h.result_int(), h.reason(), h.version(), h, out, cap);
}

}  // namespace sag::session
