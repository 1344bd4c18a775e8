// RecordStream: a server's TLS 1.3 connection after the handshake, without
// OpenSSL's SSL object. TlsSocketStream runs the handshake with OpenSSL,
// then (TLS 1.3, an AEAD suite RecordCipher knows, both traffic secrets
// seen) hands the connection over to one of these and frees the SSL: about
// 13 KiB less per connection for as long as it lives.
//
// What it speaks after the handshake (RFC 8446): application data both
// ways; close_notify both ways (and user_canceled, ignored); KeyUpdate from
// the client, answered before our next record when the client asks; any
// other alert ends the stream with that alert as the error. Anything else
// (a record that fails authentication, an unprotected record, one over the
// size limit, another handshake message, a KeyUpdate not ending its
// record) is fatal: a best-effort alert goes out and every later read and
// write fails.
//
// Contract
// - Thread: the connection's strand; it calls recv/send on the socket's fd
//   itself, non-blocking, and marks the socket for readiness as the BIO did
//   (socket_readiness.h).
// - Need: kNothing means the call finished (n, ec); kRead or kWrite means
//   it must be called again, same arguments, once the socket is ready.
// - Overlap: one read and one write may be in progress at once, and a
//   shutdown in place of the write.
// - A write seals at most one record (16 KiB) and reports its bytes once the
//   whole record is on the socket. When it returns kWrite, the record is
//   sealed and committed: the next write call flushes it first and reports
//   those bytes (the caller retries the same bytes, as OpenSSL requires),
//   unless abandon_write() said the caller gave up on them; then only the
//   flush happens and the call goes on with its own bytes.
// - Memory: the ciphers' two contexts and this object while idle; an I/O
//   block (io_blocks.h) only while a record is partly read or written, or
//   decrypted bytes wait for the reader.
#pragma once

#include <cstddef>
#include <cstdint>

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "tls/record_cipher.h"

namespace sag::tls {

class RecordStream {
 public:
  enum class Need : std::uint8_t { kNothing, kRead, kWrite };
  using socket_type = boost::asio::ip::tcp::socket;
  using error_code = boost::system::error_code;

  RecordStream() = default;
  ~RecordStream();
  RecordStream(const RecordStream&) = delete;
  RecordStream& operator=(const RecordStream&) = delete;

  // Keys both directions from the handshake's application traffic secrets
  // (`len` bytes each). `server_records`: records OpenSSL already sealed
  // under the server's secret (the session tickets). False: unsupported
  // suite or an OpenSSL failure; the caller keeps OpenSSL then.
  bool init(std::uint16_t suite, const unsigned char* client_secret,
            const unsigned char* server_secret, std::size_t len, std::uint64_t server_records);

  // Takes over a pool block holding bytes [begin, end) read from the socket
  // and not given to OpenSSL (the client's first records, often).
  void adopt_input(char* block, std::size_t begin, std::size_t end) noexcept;

  Need read(socket_type& s, void* data, std::size_t size, std::size_t& n, error_code& ec);
  Need write(socket_type& s, const void* data, std::size_t size, std::size_t& n, error_code& ec);
  // Flushes what a write left, then sends close_notify (once).
  Need shutdown(socket_type& s, error_code& ec);
  void abandon_write() noexcept { owed_reported_ = true; }

  // A read would return now without the socket: decrypted bytes, a whole
  // record buffered, or an end (close_notify, an error) to report.
  bool has_pending() const noexcept;
  bool output_pending() const noexcept { return out_ != nullptr; }
  bool close_notify_sent() const noexcept { return close_sent_; }
  bool close_notify_received() const noexcept { return close_received_; }

 private:
  Need flush(socket_type& s, error_code& ec);
  // A whole record (valid or not) waits at in_begin_.
  bool whole_record() const noexcept;
  // Applies an alert or handshake record; false when the read ends (ec).
  bool control(socket_type& s, std::uint8_t type, const unsigned char* p, std::size_t n,
               error_code& ec);
  // Fatal: both directions fail with `reason` from now on; `alert` goes to
  // the peer if nothing else is being sent.
  void fail(socket_type& s, std::uint8_t alert, int reason, error_code& ec);
  void release_input() noexcept;
  void release_output() noexcept;

  RecordCipher rx_, tx_;
  char* in_ = nullptr;  // pool block: [pt_begin_, pt_end_) plaintext, [in_begin_, in_end_) records
  std::uint32_t pt_begin_ = 0, pt_end_ = 0, in_begin_ = 0, in_end_ = 0;
  char* out_ = nullptr;  // pool block: [out_begin_, out_end_) sealed, not yet sent
  std::uint32_t out_begin_ = 0, out_end_ = 0;
  std::uint32_t owed_plain_ = 0;  // plaintext bytes the record in out_ carries
  bool owed_reported_ = true;     // ... and whether a write call reported them
  bool key_update_owed_ = false;  // the client asked for our KeyUpdate
  bool close_sent_ = false;
  bool close_received_ = false;
  error_code read_error_;   // sticky: eof after close_notify, or the fatal error
  error_code write_error_;  // sticky
};

}  // namespace sag::tls
