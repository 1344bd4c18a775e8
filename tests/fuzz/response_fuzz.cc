// Fuzzes the server-response path as Http1ServerConnection drives it:
// ResponseReader fed the server's bytes in pieces (the first input byte
// picks HEAD or not, the second the piece size), interim 1xx skipped, then
// the body decoded from buffered bytes or read "straight" (direct_limit)
// as the connection does, and the end of input passed on. Oracles: no
// crash or sanitizer report; a head is never reported used past the input;
// a body with a length relays exactly that many bytes when done and never
// more; a body delimited by the close never counts as keep-alive; a head
// parsed over several calls equals the same bytes parsed in one.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "session/forward/response_reader.h"

using sag::session::Response;
using sag::session::ResponseReader;

namespace {

std::string lines_of(const Response& res) {
  std::string out;
  for (const auto& f : res) out.append(f.line());
  return out;
}

// A head parsed over several calls (each going on where the last stopped)
// must come out as the same bytes parsed in one call: length, error, and
// when complete, status, version, reason, every field's line in order,
// framing and keep-alive.
void same_as_one_read(std::string_view buffered, bool head_request, size_t used,
                      boost::system::error_code ec, const ResponseReader& reader,
                      const Response& res) {
  ResponseReader fresh;
  Response once;
  boost::system::error_code once_ec;
  const size_t once_used = fresh.parse_head(buffered, head_request, once, once_ec);
  if (once_used != used || once_ec != ec) std::abort();
  if (used == 0) return;
  if (once.result_int() != res.result_int() || once.version() != res.version() ||
      once.reason() != res.reason() || lines_of(once) != lines_of(res) ||
      fresh.framing() != reader.framing() || fresh.keep_alive() != reader.keep_alive() ||
      fresh.content_length() != reader.content_length())
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool head_request = data[0] & 1;
  const bool direct_reads = data[0] & 2;
  const size_t piece = 1 + data[1] % 64;
  const std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);

  ResponseReader reader;
  Response res;
  std::string buffered;  // what the connection's input buffer holds
  size_t fed = 0;
  auto feed = [&] {
    const size_t n = std::min(piece, in.size() - fed);
    buffered.append(in.substr(fed, n));
    fed += n;
    return n > 0;
  };
  for (;;) {  // the head; interim 1xx responses are skipped
    boost::system::error_code ec;
    const size_t used = reader.parse_head(buffered, head_request, res, ec);
    same_as_one_read(buffered, head_request, used, ec, reader, res);
    if (ec) return 0;  // a 502
    if (used > buffered.size()) std::abort();
    if (used > 0) {
      buffered.erase(0, used);
      if (res.result_int() >= 200 || res.result_int() == 101) break;
      continue;
    }
    if (buffered.size() >= 16 * 1024) return 0;  // head over the buffer: a 502
    if (!feed()) return 0;                       // the server closed first
  }
  const auto length = reader.content_length();
  const bool has_length = reader.framing() == ResponseReader::Framing::kLength;
  char out[1024];
  uint64_t relayed = 0;
  while (!reader.done()) {
    boost::system::error_code ec;
    if (!buffered.empty()) {
      size_t produced = 0;
      const size_t used = reader.decode(buffered, out, sizeof out, produced, ec);
      if (used > buffered.size() || produced > sizeof out) std::abort();
      buffered.erase(0, used);
      relayed += produced;
      if (ec) return 0;
      if (produced > 0 || reader.done()) continue;
    }
    const size_t direct = direct_reads ? reader.direct_limit(sizeof out) : 0;
    if (direct > 0) {
      const size_t n = std::min({direct, piece, in.size() - fed});
      if (n == 0) {
        reader.end_of_input(ec);
        if (ec) return 0;
        break;
      }
      fed += n;
      reader.consumed_direct(n);
      relayed += n;
      continue;
    }
    if (!feed()) {
      reader.end_of_input(ec);
      if (ec) return 0;  // cut short
      break;
    }
  }
  if (has_length && relayed > *length) std::abort();
  if (has_length && reader.done() && relayed != *length) std::abort();
  // A body that runs until close never leaves a connection to reuse.
  if (reader.keep_alive() && reader.framing() == ResponseReader::Framing::kUntilClose) std::abort();
  return 0;
}
