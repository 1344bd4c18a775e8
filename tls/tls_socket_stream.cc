#include "tls/tls_socket_stream.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/system/system_error.hpp>

namespace sag::tls {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// The BIO: recv/send on the socket's fd, nothing buffered. Unlike OpenSSL's
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
    if (n >= 0) return static_cast<int>(n);
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

int bio_read(BIO* b, char* data, int len) {
  auto* io = static_cast<TlsSocketStream::Io*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  for (;;) {
    const ssize_t n = ::recv(io->socket->native_handle(), data, static_cast<size_t>(len), MSG_DONTWAIT);
    if (n >= 0) {
      if (n == 0) {
        io->eof = true;
      } else if (n < len) {
        base::note_read_short(*io->socket);  // emptied: the next wait needs an event
      }
      return static_cast<int>(n);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      base::note_read_drained(*io->socket);
      BIO_set_retry_read(b);
    } else {
      io->error = errno;
    }
    return -1;
  }
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

// Coalescing blocks: a per-thread free list (the blocks themselves hold the
// links), so steady-state writes never allocate and an idle connection holds
// none. A few are kept for reuse; more, needed only while that many writes
// wait on slow peers at once, are freed when returned.
constexpr std::size_t kBlockSize = 16 * 1024;
constexpr int kKeepBlocks = 16;

struct FreeBlocks {
  char* head = nullptr;
  int count = 0;
  std::size_t allocated = 0;
  ~FreeBlocks() {
    while (head != nullptr) {
      char* next;
      std::memcpy(&next, head, sizeof next);
      ::operator delete(head);
      head = next;
    }
  }
};
thread_local FreeBlocks free_blocks;

}  // namespace

char* TlsSocketStream::take_block() {
  FreeBlocks& f = free_blocks;
  if (f.head == nullptr) {
    ++f.allocated;
    return static_cast<char*>(::operator new(kBlockSize));
  }
  char* b = f.head;
  std::memcpy(&f.head, b, sizeof f.head);
  --f.count;
  return b;
}

void TlsSocketStream::give_block(char* block) noexcept {
  FreeBlocks& f = free_blocks;
  if (f.count >= kKeepBlocks) {
    ::operator delete(block);
    return;
  }
  std::memcpy(block, &f.head, sizeof f.head);
  f.head = block;
  ++f.count;
}

std::size_t TlsSocketStream::scratch_blocks_allocated() noexcept { return free_blocks.allocated; }

// SSL_has_pending, not SSL_pending: it also counts record bytes read from
// the socket and not yet decrypted, which no socket readiness would signal.
bool TlsSocketStream::has_pending_plaintext() const noexcept { return SSL_has_pending(ssl_) == 1; }

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
  if (st.size == 0 && !owed_) {
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

TlsSocketStream::OpState TlsSocketStream::OpState::write(const asio::const_buffer* pieces,
                                                         std::size_t count) {
  static_assert(kBlockSize == kRecordSize);
  OpState st(Kind::kWrite);
  if (count == 0) return st;
  if (count == 1 || pieces[0].size() >= kRecordSize) {
    // One record straight from the caller's buffer.
    st.data = const_cast<void*>(pieces[0].data());
    st.size = std::min(pieces[0].size(), kRecordSize);
    return st;
  }
  // Several pieces: one record (one send) instead of one per piece.
  st.block = take_block();
  std::size_t used = 0;
  for (std::size_t i = 0; i < count && used < kRecordSize; ++i) {
    const std::size_t k = std::min(pieces[i].size(), kRecordSize - used);
    std::memcpy(st.block + used, pieces[i].data(), k);
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
  // Read whole socket chunks instead of a header then a body per record:
  // half the recv calls; the buffer is still released once drained.
  SSL_set_read_ahead(ssl_, 1);
  error_code ignored;
  socket_.non_blocking(true, ignored);
  io_.socket = &socket_;
  BIO_set_data(bio, &io_);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);
}

TlsSocketStream::~TlsSocketStream() { SSL_free(ssl_); }

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
      rc = SSL_do_handshake(ssl_);
      if (rc == 1) return Want::kNothing;
      return failed(rc, st.ec);

    case OpState::Kind::kRead: {
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
