#include "tls/tls_socket_stream.h"

#include "config/base/hex.h"
#include "tls/io_blocks.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include <openssl/crypto.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/system/system_error.hpp>

namespace sag::tls {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Follows the record framing of the bytes the socket took, until the
// handshake is done (Io::counting): hand_over() needs how many records the
// server's traffic key sealed.
void count_records(TlsSocketStream::Io& io, const unsigned char* p, std::size_t n) {
  while (n != 0) {
    if (io.record_left != 0) {
      const std::size_t k = std::min<std::size_t>(n, io.record_left);
      io.record_left -= static_cast<std::uint32_t>(k);
      p += k;
      n -= k;
      continue;
    }
    if (io.header_have >= 3) io.header_len[io.header_have - 3] = *p;
    ++p;
    --n;
    if (++io.header_have == 5) {
      io.header_have = 0;
      io.record_left = static_cast<std::uint32_t>(io.header_len[0] << 8 | io.header_len[1]);
      ++io.records_written;
    }
  }
}

// The BIO: recv/send on the socket's fd; what recv got waits in a pool
// block until OpenSSL asks for it (bio_read). Unlike OpenSSL's
// socket BIO it sends with MSG_NOSIGNAL (a peer's reset must not raise
// SIGPIPE), keeps errno for the error code, and reports EOF as a plain
// SSL_ERROR_SYSCALL rather than through BIO_eof: OpenSSL 3 would otherwise
// turn the peer's FIN into a fatal "unexpected eof" that also kills our
// write side, while asio's stream (and the WebSocket half-close) wants
// stream_truncated on reads and a still-writable stream.
int bio_write(BIO* b, const char* data, int len) {
  auto* io = static_cast<TlsSocketStream::Io*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  for (;;) {
    const ssize_t n = ::send(io->socket->native_handle(), data, static_cast<size_t>(len), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      if (io->counting) {
        count_records(*io, reinterpret_cast<const unsigned char*>(data), static_cast<std::size_t>(n));
      }
      return static_cast<int>(n);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      base::note_write_blocked(*io->socket);
      BIO_set_retry_write(b);
    } else {
      io->error = errno;
    }
    return -1;
  }
}

void release_input(TlsSocketStream::Io& io) noexcept {
  if (io.in != nullptr) give_io_block(io.in);
  io.in = nullptr;
  io.in_begin = io.in_end = 0;
}

// OpenSSL asks for a record header, then its body (no read-ahead); one recv
// fills a pool block that serves both, and whatever follows the handshake
// stays there for the RecordStream.
int bio_read(BIO* b, char* data, int len) {
  auto* io = static_cast<TlsSocketStream::Io*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (io->in_begin == io->in_end) {
    if (io->in == nullptr) io->in = take_io_block();
    io->in_begin = io->in_end = 0;
    for (;;) {
      const ssize_t n = ::recv(io->socket->native_handle(), io->in, kIoBlockSize, MSG_DONTWAIT);
      if (n > 0) {
        io->in_end = static_cast<std::uint32_t>(n);
        if (static_cast<std::size_t>(n) < kIoBlockSize) {
          base::note_read_short(*io->socket);  // emptied: the next wait needs an event
        }
        break;
      }
      if (n < 0 && errno == EINTR) continue;
      release_input(*io);
      if (n == 0) {
        io->eof = true;
        return 0;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        base::note_read_drained(*io->socket);
        BIO_set_retry_read(b);
      } else {
        io->error = errno;
      }
      return -1;
    }
  }
  const std::size_t k = std::min<std::size_t>(static_cast<std::size_t>(len), io->in_end - io->in_begin);
  std::memcpy(data, io->in + io->in_begin, k);
  io->in_begin += static_cast<std::uint32_t>(k);
  if (io->in_begin == io->in_end) release_input(*io);
  return static_cast<int>(k);
}

long bio_ctrl(BIO* b, int cmd, long, void* ptr) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_C_GET_FD: {
      const int fd = static_cast<TlsSocketStream::Io*>(BIO_get_data(b))->socket->native_handle();
      if (ptr != nullptr) *static_cast<int*>(ptr) = fd;
      return fd;
    }
    default:
      return 0;  // BIO_CTRL_EOF included (see above)
  }
}

int bio_create(BIO*) { return 1; }
int bio_destroy(BIO*) { return 1; }  // the socket is not ours to close

BIO_METHOD* socket_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "sag tcp socket");
    if (m == nullptr || BIO_meth_set_write(m, bio_write) != 1 ||
        BIO_meth_set_read(m, bio_read) != 1 || BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
        BIO_meth_set_create(m, bio_create) != 1 || BIO_meth_set_destroy(m, bio_destroy) != 1)
      return static_cast<BIO_METHOD*>(nullptr);
    return m;
  }();
  return method;
}

int io_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool starts_with(const char* s, const char* prefix) { return std::strncmp(s, prefix, std::strlen(prefix)) == 0; }

// Decodes the hex at the end of a keylog line; 0 when it isn't one.
std::uint8_t secret_from(const char* line, unsigned char* out) {
  const char* hex = std::strrchr(line, ' ');
  if (hex == nullptr) return 0;
  ++hex;
  const std::size_t len = std::strlen(hex);
  if (len == 0 || len % 2 != 0 || len / 2 > RecordCipher::kMaxSecret) return 0;
  for (std::size_t i = 0; i < len / 2; ++i) {
    const int hi = base::hex_value(hex[2 * i]), lo = base::hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return 0;
    out[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return static_cast<std::uint8_t>(len / 2);
}

}  // namespace

std::size_t TlsSocketStream::scratch_blocks_allocated() noexcept { return io_blocks_allocated(); }

TlsSocketStream::Io::Secrets::~Secrets() { OPENSSL_cleanse(this, sizeof *this); }

// OpenSSL calls this as it derives each secret. The server's application
// traffic secret comes when the server switches its write side to it,
// right after its Finished went out: records written from then on (the
// session tickets) were sealed with it.
void TlsSocketStream::keylog_callback(const SSL* ssl, const char* line) {
  auto* io = static_cast<Io*>(SSL_get_ex_data(ssl, io_index()));
  if (io == nullptr) return;
  const bool server = starts_with(line, "SERVER_TRAFFIC_SECRET_0 ");
  if (!server && !starts_with(line, "CLIENT_TRAFFIC_SECRET_0 ")) return;
  if (!io->secrets) io->secrets = std::make_unique<Io::Secrets>();
  Io::Secrets& s = *io->secrets;
  if (server) {
    s.server_len = secret_from(line, s.server);
    s.server_records_before = io->records_written;
  } else {
    s.client_len = secret_from(line, s.client);
  }
}

void TlsSocketStream::hand_over() {
  const std::unique_ptr<Io::Secrets> s = std::move(io_.secrets);
  if (!s || s->client_len == 0 || s->client_len != s->server_len) return;
  if (SSL_version(ssl_) != TLS1_3_VERSION || SSL_is_server(ssl_) != 1) return;
  const std::uint16_t suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(ssl_));
  // OpenSSL must hold nothing of the stream: no record bytes read ahead,
  // none half-written.
  if (!RecordCipher::supports(suite) || SSL_has_pending(ssl_) == 1 || owed_) return;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn_len > sizeof alpn_) return;
  auto rec = std::make_unique<RecordStream>();
  if (!rec->init(suite, s->client, s->server, s->client_len,
                 io_.records_written - s->server_records_before))
    return;
  if (alpn_len != 0) std::memcpy(alpn_, alpn, alpn_len);
  alpn_len_ = static_cast<std::uint8_t>(alpn_len);
  reused_ = SSL_session_reused(ssl_) == 1;
  rec->adopt_input(io_.in, io_.in_begin, io_.in_end);
  io_.in = nullptr;
  io_.in_begin = io_.in_end = 0;
  // Freed without close_notify, OpenSSL would drop the session from the
  // server's cache; the handshake is complete, so it stays resumable.
  SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN);
  SSL_free(ssl_);
  ssl_ = nullptr;
  rec_ = std::move(rec);
}

std::string_view TlsSocketStream::alpn() const noexcept {
  if (ssl_ == nullptr) return {alpn_, alpn_len_};
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  if (data == nullptr) return {};
  return {reinterpret_cast<const char*>(data), len};
}

bool TlsSocketStream::session_reused() const noexcept {
  return ssl_ != nullptr ? SSL_session_reused(ssl_) == 1 : reused_;
}

bool TlsSocketStream::close_notify_sent() const noexcept {
  if (rec_) return rec_->close_notify_sent();
  return ssl_ != nullptr && (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0;
}

bool TlsSocketStream::close_notify_received() const noexcept {
  if (rec_) return rec_->close_notify_received();
  return ssl_ != nullptr && (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0;
}

// SSL_has_pending, not SSL_pending: it also counts record bytes read from
// the socket and not yet decrypted, which no socket readiness would signal.
// Bytes in our input block count too: OpenSSL hasn't seen them.
bool TlsSocketStream::has_pending_plaintext() const noexcept {
  if (rec_) return rec_->has_pending();
  return io_.in_end != io_.in_begin || SSL_has_pending(ssl_) == 1;
}

std::size_t TlsSocketStream::read_some_now(void* data, std::size_t size, error_code& ec) {
  OpState st = OpState::read(data, size);
  if (step(st) != Want::kNothing) {
    // SSL_read may be retried later with any buffer.
    ec = asio::error::would_block;
    return 0;
  }
  ec = st.ec;
  return st.n;
}

std::size_t TlsSocketStream::write_now(OpState st, error_code& ec) {
  if (st.size == 0 && !owed_ && !(rec_ && rec_->output_pending())) {
    ec = {};
    return 0;
  }
  const Want want = step(st);
  finish(st);
  if (want != Want::kNothing) {
    ec = asio::error::would_block;
    return 0;
  }
  ec = st.ec;
  return st.n;
}

TlsSocketStream::OpState TlsSocketStream::OpState::handshake(bool client) {
  OpState st(Kind::kHandshake);
  st.client = client;
  return st;
}

TlsSocketStream::OpState TlsSocketStream::OpState::read(void* data, std::size_t size) {
  OpState st(Kind::kRead);
  st.data = data;
  st.size = size;
  return st;
}

TlsSocketStream::OpState TlsSocketStream::OpState::write(const Piece* pieces,
                                                         std::size_t count) {
  static_assert(kIoBlockSize >= kRecordSize);
  OpState st(Kind::kWrite);
  if (count == 0) return st;
  if (count == 1 || pieces[0].size >= kRecordSize) {
    // One record straight from the caller's buffer.
    st.data = const_cast<void*>(pieces[0].data);
    st.size = std::min(pieces[0].size, kRecordSize);
    return st;
  }
  // Several pieces: one record (one send) instead of one per piece.
  st.block = take_io_block();
  std::size_t used = 0;
  for (std::size_t i = 0; i < count && used < kRecordSize; ++i) {
    const std::size_t k = std::min(pieces[i].size, kRecordSize - used);
    std::memcpy(st.block + used, pieces[i].data, k);
    used += k;
  }
  st.data = st.block;
  st.size = used;
  return st;
}

TlsSocketStream::OpState TlsSocketStream::OpState::shutdown() { return OpState(Kind::kShutdown); }

TlsSocketStream::TlsSocketStream(next_layer_type&& socket, SSL_CTX* ctx)
    : socket_(std::move(socket)), ssl_(ctx != nullptr ? SSL_new(ctx) : nullptr) {
  BIO* bio = ssl_ != nullptr ? BIO_new(socket_method()) : nullptr;
  if (bio == nullptr) {
    const error_code ec(static_cast<int>(ERR_get_error()), asio::error::get_ssl_category());
    ERR_clear_error();
    if (ssl_ != nullptr) SSL_free(ssl_);
    throw boost::system::system_error(ec, "TlsSocketStream");
  }
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                         SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_options(ssl_, SSL_OP_NO_RENEGOTIATION);
  // No read-ahead: the BIO's block already makes one recv serve many
  // records, and OpenSSL must not take bytes past the handshake
  // (hand_over()).
  SSL_set_ex_data(ssl_, io_index(), &io_);
  error_code ignored;
  socket_.non_blocking(true, ignored);
  io_.socket = &socket_;
  BIO_set_data(bio, &io_);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);
}

TlsSocketStream::~TlsSocketStream() {
  SSL_free(ssl_);
  release_input(io_);
}

TlsSocketStream::Want TlsSocketStream::step(OpState& st) {
  io_.error = 0;
  io_.eof = false;
  st.ec = {};
  st.n = 0;
  int rc = 0;
  switch (st.kind) {
    case OpState::Kind::kHandshake:
      if (!st.started) {
        st.started = true;
        if (st.client) {
          SSL_set_connect_state(ssl_);
        } else {
          SSL_set_accept_state(ssl_);
        }
      }
      ERR_clear_error();
      if (rec_) return Want::kNothing;
      rc = SSL_do_handshake(ssl_);
      if (rc == 1) {
        if (!st.client) hand_over();
        io_.counting = false;
        return Want::kNothing;
      }
      return failed(rc, st.ec);

    case OpState::Kind::kRead: {
      if (rec_) return wants(rec_->read(socket_, st.data, st.size, st.n, st.ec));
      if (st.size == 0) return Want::kNothing;
      std::size_t got = 0;
      // No ERR_clear_error() here or before writes (about 800 instructions
      // each, twice a request): every failure this stream sees goes through
      // failed(), which empties the thread's error queue, and nothing else
      // on a worker thread leaves errors in it. Handshakes and shutdowns,
      // rare, still clear first.
      rc = SSL_read_ex(ssl_, st.data, st.size, &got);
      if (rc == 1) {
        st.n = got;
        return Want::kNothing;
      }
      return failed(rc, st.ec);
    }

    case OpState::Kind::kWrite: {
      if (rec_) return wants(rec_->write(socket_, st.data, st.size, st.n, st.ec));
      if (owed_) {
        const Want w = flush_owed(st.ec);
        if (w != Want::kNothing || st.ec) return w;
      }
      if (st.size == 0) return Want::kNothing;
      std::size_t wrote = 0;
      rc = SSL_write_ex(ssl_, st.data, st.size, &wrote);
      if (rc == 1) {
        st.n = wrote;
        return Want::kNothing;
      }
      return failed(rc, st.ec);
    }

    case OpState::Kind::kShutdown: {
      if (rec_) return wants(rec_->shutdown(socket_, st.ec));
      if (owed_) {
        const Want w = flush_owed(st.ec);
        if (w != Want::kNothing || st.ec) return w;
      }
      ERR_clear_error();
      rc = SSL_shutdown(ssl_);
      if (rc >= 0) return Want::kNothing;  // 0: sent ours, the peer's not (yet) seen
      const Want w = failed(rc, st.ec);
      // Already sent earlier: OpenSSL would now wait for the peer's; we don't.
      if (w == Want::kRead && (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0) return Want::kNothing;
      return w;
    }
  }
  return Want::kNothing;
}

TlsSocketStream::Want TlsSocketStream::flush_owed(error_code& ec) {
  std::size_t wrote = 0;
  ERR_clear_error();
  const int rc = SSL_write_ex(ssl_, owed_.get(), owed_size_, &wrote);
  if (rc == 1) {
    owed_.reset();
    owed_size_ = 0;
    return Want::kNothing;
  }
  return failed(rc, ec);
}

void TlsSocketStream::abandon(OpState& st, const error_code& ec) {
  st.ec = ec;
  st.n = 0;
  if (rec_) {
    // A sealed record still goes out first, but these bytes are not the
    // next write's to report.
    if (st.kind == OpState::Kind::kWrite) rec_->abandon_write();
    return;
  }
  // SSL_write said "retry me": a record holding these bytes may be half
  // sent. Keep them so the next write or the shutdown can finish it (the
  // peer then sees a whole record, and our close_notify after it).
  if (st.kind == OpState::Kind::kWrite && !owed_ && st.size != 0 && st.data != nullptr) {
    owed_ = std::make_unique<char[]>(st.size);
    std::memcpy(owed_.get(), st.data, st.size);
    owed_size_ = st.size;
  }
}

TlsSocketStream::Want TlsSocketStream::failed(int rc, error_code& ec) {
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
      return Want::kRead;
    case SSL_ERROR_WANT_WRITE:
      return Want::kWrite;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      ec = asio::error::eof;
      break;
    case SSL_ERROR_SSL: {
      const unsigned long e = ERR_get_error();
      if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ec = asio::ssl::error::stream_truncated;
      } else {
        ec = error_code(static_cast<int>(e), asio::error::get_ssl_category());
      }
      break;
    }
    case SSL_ERROR_SYSCALL: {
      const unsigned long e = ERR_get_error();
      if (e != 0) {
        ec = error_code(static_cast<int>(e), asio::error::get_ssl_category());
      } else if (io_.error != 0) {
        ec = error_code(io_.error, boost::system::system_category());
      } else if (io_.eof) {
        ec = asio::ssl::error::stream_truncated;  // EOF without close_notify
      } else {
        ec = asio::ssl::error::unspecified_system_error;  // as asio's stream says
      }
      break;
    }
    default:
      ec = asio::ssl::error::unexpected_result;
      break;
  }
  ERR_clear_error();
  return Want::kNothing;
}

}  // namespace sag::tls
