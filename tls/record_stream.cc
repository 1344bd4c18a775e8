#include "tls/record_stream.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include "config/base/socket_readiness.h"
#include "tls/io_blocks.h"

namespace sag::tls {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::size_t kHeader = RecordCipher::kHeader;
constexpr std::size_t kTag = RecordCipher::kTag;
static_assert(kIoBlockSize >= kHeader + RecordCipher::kMaxBody);
static_assert(kIoBlockSize >= RecordCipher::sealed_size(5) + RecordCipher::sealed_size(RecordCipher::kMaxPlain));

// TLS alert descriptions (RFC 8446 section 6).
constexpr std::uint8_t kCloseNotify = 0, kUnexpectedMessage = 10, kBadRecordMac = 20,
                       kRecordOverflow = 22, kDecodeError = 50, kInternalError = 80,
                       kUserCanceled = 90;
constexpr std::uint8_t kKeyUpdate = 24;  // handshake message type

// Errors in OpenSSL's packing, so they read as OpenSSL's own would
// ("decryption failed or bad record mac", "tlsv1 alert ...").
error_code ssl_error(int reason) {
  return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)), asio::error::get_ssl_category()};
}

}  // namespace

RecordStream::~RecordStream() {
  release_input();
  release_output();
}

bool RecordStream::init(std::uint16_t suite, const unsigned char* client_secret,
                        const unsigned char* server_secret, std::size_t len,
                        std::uint64_t server_records) {
  return rx_.init(suite, client_secret, len, false) &&
         tx_.init(suite, server_secret, len, true, server_records);
}

void RecordStream::adopt_input(char* block, std::size_t begin, std::size_t end) noexcept {
  release_input();
  if (block == nullptr) return;
  in_ = block;
  in_begin_ = static_cast<std::uint32_t>(begin);
  in_end_ = static_cast<std::uint32_t>(end);
  if (in_begin_ == in_end_) release_input();
}

void RecordStream::release_input() noexcept {
  if (in_ != nullptr) give_io_block(in_);
  in_ = nullptr;
  pt_begin_ = pt_end_ = in_begin_ = in_end_ = 0;
}

void RecordStream::release_output() noexcept {
  if (out_ != nullptr) give_io_block(out_);
  out_ = nullptr;
  out_begin_ = out_end_ = 0;
}

bool RecordStream::whole_record() const noexcept {
  const std::size_t avail = in_end_ - in_begin_;
  if (avail < kHeader) return false;
  const auto* h = reinterpret_cast<const unsigned char*>(in_ + in_begin_);
  return avail >= kHeader + (std::size_t{h[3]} << 8 | h[4]);
}

bool RecordStream::has_pending() const noexcept {
  return pt_end_ != pt_begin_ || read_error_ || (in_ != nullptr && whole_record());
}

void RecordStream::fail(socket_type& s, std::uint8_t alert, int reason, error_code& ec) {
  read_error_ = write_error_ = ec = ssl_error(reason);
  release_input();
  if (close_sent_ || out_ != nullptr) return;  // never inside another record
  close_sent_ = true;
  unsigned char record[RecordCipher::sealed_size(2)];
  const unsigned char body[2] = {2, alert};  // fatal
  const std::size_t n = tx_.seal(RecordCipher::kAlert, body, sizeof body, record);
  if (n != 0) (void)::send(s.native_handle(), record, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

RecordStream::Need RecordStream::read(socket_type& s, void* data, std::size_t size,
                                      std::size_t& n, error_code& ec) {
  n = 0;
  ec = {};
  if (size == 0) return Need::kNothing;
  for (;;) {
    if (pt_end_ != pt_begin_) {
      const std::size_t k = std::min<std::size_t>(size, pt_end_ - pt_begin_);
      std::memcpy(data, in_ + pt_begin_, k);
      pt_begin_ += static_cast<std::uint32_t>(k);
      if (pt_begin_ == pt_end_) {
        pt_begin_ = pt_end_ = 0;
        if (in_begin_ == in_end_) release_input();
      }
      n = k;
      return Need::kNothing;
    }
    if (read_error_) {
      ec = read_error_;
      return Need::kNothing;
    }
    const std::size_t avail = in_end_ - in_begin_;
    if (avail >= kHeader) {
      auto* h = reinterpret_cast<unsigned char*>(in_ + in_begin_);
      const std::size_t body = std::size_t{h[3]} << 8 | h[4];
      // After the handshake every record is protected: outer type
      // application_data (a change_cipher_spec or plaintext alert now is
      // an unexpected message).
      if (h[0] != RecordCipher::kAppData) {
        fail(s, kUnexpectedMessage, SSL_R_UNEXPECTED_RECORD, ec);
        return Need::kNothing;
      }
      if (body > RecordCipher::kMaxBody) {
        fail(s, kRecordOverflow, SSL_R_ENCRYPTED_LENGTH_TOO_LONG, ec);
        return Need::kNothing;
      }
      if (avail >= kHeader + body) {
        unsigned char* in = h + kHeader;
        // Straight into the reader's buffer when the record fits there.
        const bool direct = body > kTag && size >= body - kTag;
        unsigned char* out = direct ? static_cast<unsigned char*>(data) : in;
        std::uint8_t type = 0;
        std::size_t len = 0;
        if (!rx_.open(h, in, body, out, type, len)) {
          fail(s, kBadRecordMac, SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC, ec);
          return Need::kNothing;
        }
        if (type == 0) {  // nothing but padding (RFC 8446 section 5.4)
          fail(s, kUnexpectedMessage, SSL_R_BAD_RECORD_TYPE, ec);
          return Need::kNothing;
        }
        in_begin_ += static_cast<std::uint32_t>(kHeader + body);
        if (type == RecordCipher::kAppData) {
          if (len == 0) continue;  // empty records are allowed
          if (direct) {
            if (in_begin_ == in_end_) release_input();
            n = len;
            return Need::kNothing;
          }
          pt_begin_ = static_cast<std::uint32_t>(reinterpret_cast<char*>(in) - in_);
          pt_end_ = pt_begin_ + static_cast<std::uint32_t>(len);
          continue;
        }
        if (!control(s, type, out, len, ec)) return Need::kNothing;
        continue;
      }
    }
    // More bytes needed: keep a partial record at the block's front.
    if (in_ == nullptr) {
      in_ = take_io_block();
      in_begin_ = in_end_ = 0;
    } else if (in_begin_ != 0) {
      std::memmove(in_, in_ + in_begin_, avail);
      in_begin_ = 0;
      in_end_ = static_cast<std::uint32_t>(avail);
    }
    const std::size_t room = kIoBlockSize - in_end_;
    const ssize_t got = ::recv(s.native_handle(), in_ + in_end_, room, MSG_DONTWAIT);
    if (got > 0) {
      in_end_ += static_cast<std::uint32_t>(got);
      if (static_cast<std::size_t>(got) < room) base::note_read_short(s);
      continue;
    }
    if (got == 0) {  // the peer's FIN without close_notify: not fatal, writes go on
      if (in_begin_ == in_end_) release_input();
      ec = asio::ssl::error::stream_truncated;
      return Need::kNothing;
    }
    if (errno == EINTR) continue;
    if (in_begin_ == in_end_) release_input();
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      base::note_read_drained(s);
      return Need::kRead;
    }
    read_error_ = ec = error_code(errno, boost::system::system_category());
    return Need::kNothing;
  }
}

bool RecordStream::control(socket_type& s, std::uint8_t type, const unsigned char* p,
                           std::size_t n, error_code& ec) {
  if (type == RecordCipher::kAlert) {
    if (n != 2) {
      fail(s, kDecodeError, SSL_R_BAD_LENGTH, ec);
      return false;
    }
    if (p[1] == kUserCanceled) return true;  // a close_notify follows
    if (p[1] == kCloseNotify) {
      close_received_ = true;
      read_error_ = ec = asio::error::eof;
      return false;
    }
    // The peer's fatal alert: nothing goes back.
    close_sent_ = true;
    read_error_ = write_error_ = ec = ssl_error(SSL_AD_REASON_OFFSET + p[1]);
    release_input();
    return false;
  }
  // A KeyUpdate is the only handshake message a client may send now; it
  // must end its record, since the next record uses the next key.
  if (type == RecordCipher::kHandshake && n == 5 && p[0] == kKeyUpdate && p[1] == 0 &&
      p[2] == 0 && p[3] == 1 && p[4] <= 1) {
    if (!rx_.next_key()) {
      fail(s, kInternalError, ERR_R_INTERNAL_ERROR, ec);
      return false;
    }
    if (p[4] == 1) key_update_owed_ = true;
    return true;
  }
  fail(s, kUnexpectedMessage, SSL_R_UNEXPECTED_MESSAGE, ec);
  return false;
}

RecordStream::Need RecordStream::flush(socket_type& s, error_code& ec) {
  while (out_begin_ != out_end_) {
    const ssize_t m = ::send(s.native_handle(), out_ + out_begin_, out_end_ - out_begin_,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (m >= 0) {
      out_begin_ += static_cast<std::uint32_t>(m);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      base::note_write_blocked(s);
      return Need::kWrite;
    }
    write_error_ = ec = error_code(errno, boost::system::system_category());
    release_output();
    return Need::kNothing;
  }
  release_output();
  return Need::kNothing;
}

RecordStream::Need RecordStream::write(socket_type& s, const void* data, std::size_t size,
                                       std::size_t& n, error_code& ec) {
  n = 0;
  ec = {};
  if (write_error_) {
    ec = write_error_;
    return Need::kNothing;
  }
  if (out_ != nullptr) {
    const Need w = flush(s, ec);
    if (w != Need::kNothing || ec) return w;
    if (!owed_reported_) {  // this call is the retry of the write that sealed it
      owed_reported_ = true;
      n = owed_plain_;
      return Need::kNothing;
    }
  }
  if (size == 0) return Need::kNothing;
  if (close_sent_) {
    ec = ssl_error(SSL_R_PROTOCOL_IS_SHUTDOWN);
    return Need::kNothing;
  }
  const std::size_t k = std::min(size, RecordCipher::kMaxPlain);
  out_ = take_io_block();
  auto* out = reinterpret_cast<unsigned char*>(out_);
  std::size_t used = 0;
  if (key_update_owed_) {
    // Ours, not asking for the client's: under the old key, then the new.
    const unsigned char key_update[5] = {kKeyUpdate, 0, 0, 1, 0};
    used = tx_.seal(RecordCipher::kHandshake, key_update, sizeof key_update, out);
    if (used == 0 || !tx_.next_key()) {
      release_output();
      fail(s, kInternalError, ERR_R_INTERNAL_ERROR, ec);
      return Need::kNothing;
    }
    key_update_owed_ = false;
  }
  const std::size_t sealed = tx_.seal(RecordCipher::kAppData, data, k, out + used);
  if (sealed == 0) {
    release_output();
    fail(s, kInternalError, ERR_R_INTERNAL_ERROR, ec);
    return Need::kNothing;
  }
  out_end_ = static_cast<std::uint32_t>(used + sealed);
  owed_plain_ = static_cast<std::uint32_t>(k);
  owed_reported_ = false;
  const Need w = flush(s, ec);
  if (w != Need::kNothing || ec) return w;
  owed_reported_ = true;
  n = k;
  return Need::kNothing;
}

RecordStream::Need RecordStream::shutdown(socket_type& s, error_code& ec) {
  ec = {};
  if (out_ != nullptr) {
    const Need w = flush(s, ec);
    if (w != Need::kNothing || ec) return w;
    owed_reported_ = true;
  }
  if (close_sent_) return Need::kNothing;
  if (write_error_) {
    ec = write_error_;
    return Need::kNothing;
  }
  out_ = take_io_block();
  const unsigned char body[2] = {1, kCloseNotify};  // warning level, as TLS 1.3 sends it
  out_end_ = static_cast<std::uint32_t>(
      tx_.seal(RecordCipher::kAlert, body, sizeof body, reinterpret_cast<unsigned char*>(out_)));
  close_sent_ = true;
  if (out_end_ == 0) {
    release_output();
    write_error_ = ec = ssl_error(ERR_R_INTERNAL_ERROR);
    return Need::kNothing;
  }
  return flush(s, ec);
}

}  // namespace sag::tls
