// Fuzzes RecordStream, the TLS 1.3 record layer a server connection runs on
// after its handshake, from the side of a client that holds the keys (the
// only side that gets past authentication). The input is a script of steps
// on a socket pair:
//   0 SEAL  type len bytes...   a record sealed with the client's key
//   1 RAW   len bytes...        bytes as they are (headers, garbage)
//   2 READ  size                a read of 1..256 bytes
//   3 WRITE len                 a write of that many bytes
// A sealed KeyUpdate moves the fuzzer's own key on, as a real client would.
// Oracles: a read never returns more than asked; the application data read
// is a prefix of what was sealed as application data (padding and empty
// records included); once a read fails for good (not eof, not "the socket is
// empty"), every later read fails the same way; no sanitizer report.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "tls/record_cipher.h"
#include "tls/record_stream.h"

using sag::tls::RecordCipher;
using sag::tls::RecordStream;

namespace {

struct Input {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
};

constexpr unsigned char kClientSecret[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                             17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
constexpr unsigned char kServerSecret[32] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                                             9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

// The peer's end: drained now and then so the server's writes never block
// for long, and written only as far as the socket takes.
void drain(int fd) {
  char sink[4096];
  while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
}

// False when the socket was full and the rest was dropped.
bool put(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n != 0) {
    const ssize_t k = ::send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static boost::asio::io_context io;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return 0;
  boost::asio::ip::tcp::socket sock(io);
  boost::system::error_code ec;
  sock.assign(boost::asio::ip::tcp::v4(), fds[0], ec);
  if (ec) {
    ::close(fds[0]);
    ::close(fds[1]);
    return 0;
  }
  RecordStream rs;
  RecordCipher client;
  if (!rs.init(0x1301, kClientSecret, kServerSecret, 32, 0) ||
      !client.init(0x1301, kClientSecret, 32, true)) {
    std::abort();
  }
  Input in{data, size};
  std::string sealed_app, read_app;  // application data sealed, and read
  bool dropped = false;               // a put() was cut short
  boost::system::error_code fatal;
  unsigned char record[RecordCipher::sealed_size(255)];
  unsigned char content[255];
  char buf[256];
  std::string payload(255, 'w');
  while (!in.empty()) {
    switch (in.byte() % 4) {
      case 0: {
        const uint8_t type = in.byte();
        const uint8_t len = in.byte();
        for (uint8_t i = 0; i < len; ++i) content[i] = in.byte();
        const size_t n = client.seal(type, content, len, record);
        if (n == 0) std::abort();
        if (!put(fds[1], record, n)) dropped = true;
        // What the reader will take for application data: the content up
        // to its last non-zero byte when that byte is 23 (padding after it).
        size_t end = len;
        uint8_t inner = type;
        if (type == 0) {
          while (end != 0 && content[end - 1] == 0) --end;
          inner = end != 0 ? content[end - 1] : 0;
          if (end != 0) --end;
        }
        if (inner == RecordCipher::kAppData) sealed_app.append(reinterpret_cast<char*>(content), end);
        if (type == RecordCipher::kHandshake && len == 5 && content[0] == 24 && content[1] == 0 &&
            content[2] == 0 && content[3] == 1 && content[4] <= 1) {
          if (!client.next_key()) std::abort();
        }
        break;
      }
      case 1: {
        const uint8_t len = in.byte();
        for (uint8_t i = 0; i < len; ++i) content[i] = in.byte();
        put(fds[1], content, len);
        dropped = true;  // raw bytes may shift everything after them
        break;
      }
      case 2: {
        const size_t want = static_cast<size_t>(in.byte()) + 1;
        size_t n = 0;
        boost::system::error_code rec;
        const RecordStream::Need need = rs.read(sock, buf, want, n, rec);
        if (n > want) std::abort();
        if (need != RecordStream::Need::kNothing) break;
        if (fatal && rec != fatal) std::abort();  // sticky once failed
        if (rec) {
          if (rec != boost::asio::error::eof) fatal = rec;
          break;
        }
        read_app.append(buf, n);
        break;
      }
      case 3: {
        const uint8_t len = in.byte();
        size_t n = 0;
        boost::system::error_code wec;
        (void)rs.write(sock, payload.data(), len, n, wec);
        if (n > len) std::abort();
        drain(fds[1]);
        break;
      }
    }
  }
  // Every byte read was sealed, in order (unless raw bytes broke the stream).
  if (!dropped && sealed_app.compare(0, read_app.size(), read_app) != 0) std::abort();
  (void)rs.shutdown(sock, ec);
  sock.close(ec);
  ::close(fds[1]);
  return 0;
}
