// TlsSocketStream: server-side TLS straight on a non-blocking TCP socket.
//
// OpenSSL reads and writes the socket itself (through a tiny BIO that calls
// recv/send on the fd: no buffers of ours, no BIO pair); when it wants to
// read or write, the operation waits for readiness (base::async_wait_ready:
// the BIO marks the socket drained or full when the kernel says EAGAIN, so
// the wait costs no system call) and calls OpenSSL again. A drop-in for how the sessions use
// boost::beast::ssl_stream<tcp::socket> (AsyncReadStream/AsyncWriteStream,
// usable with Beast's http::async_read/async_write and asio::async_write).
//
// Contract
// - Thread: one strand. Every operation and every call on the stream (and on
//   next_layer()) runs on the socket's executor; there are no locks.
// - Overlap: at most one read (async_read_some) and one write
//   (async_write_some) may be outstanding at the same time (full duplex);
//   each waits for whatever OpenSSL asks of it (a WANT_WRITE during SSL_read
//   waits for writability, and the reverse).
//   async_handshake and async_shutdown run alone (no read or write
//   outstanding).
// - Completion: never inside the initiating call (an immediate result is
//   posted); a pending operation ends with operation_aborted when
//   next_layer().cancel()/close() is called or its cancellation slot fires
//   (terminal cancellation). A write that ends with an error may already
//   have committed up to one record of its bytes: OpenSSL must finish that
//   record before anything else, so the next write or async_shutdown sends
//   its rest first (the peer sees whole records, then our close_notify).
// - Errors, as asio's ssl::stream reports them: the peer's close_notify
//   -> asio::error::eof; TCP EOF without close_notify -> ssl::error::
//   stream_truncated (not fatal: the stream can still write, a half-close);
//   OpenSSL errors -> ERR_get_error() in asio::error::get_ssl_category();
//   socket errors -> errno in the system category.
// - async_shutdown sends our close_notify and completes; it does not wait
//   for the peer's (OpenSSL keeps the session resumable once ours is sent).
// - Memory while idle (server): after a TLS 1.3 handshake with one of the
//   three AEAD suites, OpenSSL's SSL object is freed and a RecordStream
//   carries the connection (about 2.5 KiB, the two AEAD contexts almost all
//   of it, against OpenSSL's 14 KiB); TLS 1.2, another suite, and the
//   client side keep the SSL object with SSL_MODE_RELEASE_BUFFERS. Bytes
//   read from the socket wait in a pool block (io_blocks.h), held only until
//   they are consumed; a write of several small buffers is coalesced (up to
//   16 KiB: one TLS record, one send) through a pool block held for the
//   duration of that write only.
// - After the hand-over, native_handle() is null: ask alpn(),
//   session_reused() and the close_notify state here instead.
// - Lifetime: the stream must outlive its pending operations, and is
//   neither copyable nor movable (OpenSSL's BIO points into it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/system/error_code.hpp>

#include "config/base/socket_readiness.h"
#include "tls/io_blocks.h"
#include "tls/record_stream.h"

namespace sag::tls {

class TlsSocketStream {
 public:
  using next_layer_type = boost::asio::ip::tcp::socket;
  using lowest_layer_type = next_layer_type::lowest_layer_type;
  using executor_type = next_layer_type::executor_type;
  using native_handle_type = SSL*;

  // Takes the socket (connected; it is switched to non-blocking) and makes
  // an SSL from `ctx` (the listener's context). Throws system_error when
  // SSL_new fails.
  TlsSocketStream(next_layer_type&& socket, SSL_CTX* ctx);
  TlsSocketStream(next_layer_type&& socket, boost::asio::ssl::context& ctx)
      : TlsSocketStream(std::move(socket), ctx.native_handle()) {}
  ~TlsSocketStream();
  TlsSocketStream(const TlsSocketStream&) = delete;
  TlsSocketStream& operator=(const TlsSocketStream&) = delete;

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  next_layer_type& next_layer() noexcept { return socket_; }
  const next_layer_type& next_layer() const noexcept { return socket_; }
  lowest_layer_type& lowest_layer() noexcept { return socket_.lowest_layer(); }
  const lowest_layer_type& lowest_layer() const noexcept { return socket_.lowest_layer(); }
  // The SSL object; null once a TLS 1.3 server connection was handed to
  // its RecordStream (after async_handshake).
  SSL* native_handle() noexcept { return ssl_; }

  // The protocol ALPN selected ("" when none), whether the handshake
  // resumed a session, and the close_notify alerts sent and received.
  std::string_view alpn() const noexcept;
  bool session_reused() const noexcept;
  bool close_notify_sent() const noexcept;
  bool close_notify_received() const noexcept;
  // Handed over to a RecordStream (tests, the idle-memory breakdown).
  bool on_record_stream() const noexcept { return rec_ != nullptr; }

  // Installed on every server SSL_CTX (ServerTlsContext): it is how the
  // stream learns the TLS 1.3 traffic secrets it needs for the hand-over.
  static void keylog_callback(const SSL* ssl, const char* line);

  // void(error_code)
  template <class Token>
  auto async_handshake(boost::asio::ssl::stream_base::handshake_type type, Token&& token) {
    return start<false>(OpState::handshake(type == boost::asio::ssl::stream_base::client),
                        std::forward<Token>(token));
  }

  // void(error_code, size_t): reads into the first non-empty buffer (as
  // asio's ssl::stream does); an empty sequence completes with 0 bytes.
  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    boost::asio::mutable_buffer first;
    for (auto it = boost::asio::buffer_sequence_begin(buffers),
              end = boost::asio::buffer_sequence_end(buffers);
         it != end; ++it) {
      first = boost::asio::mutable_buffer(*it);
      if (first.size() != 0) break;
    }
    return start<true>(OpState::read(first.data(), first.size()), std::forward<Token>(token));
  }

  // void(error_code, size_t): writes at most one TLS record (16 KiB) from the
  // front of `buffers`; several small buffers are coalesced into that record.
  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return start<true>(write_state(buffers), std::forward<Token>(token));
  }

  // void(error_code): completes when a read would make progress: at once
  // (posted) when the stream holds bytes not yet read, else when the
  // socket is readable. Lets an idle connection wait with no read buffer;
  // cancelled as reads are (next_layer().cancel()/close()).
  template <class Token>
  auto async_wait_readable(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) {
          if (has_pending_plaintext()) {
            auto ex = boost::asio::get_associated_executor(handler, get_executor());
            boost::asio::post(ex, [h = std::move(handler)]() mutable {
              std::move(h)(boost::system::error_code{});
            });
          } else {
            base::async_wait_ready(socket_, next_layer_type::wait_read, std::move(handler));
          }
        },
        token);
  }

  // void(error_code): sends close_notify (after finishing a record a
  // cancelled write left half-sent); does not wait for the peer's.
  template <class Token>
  auto async_shutdown(Token&& token) {
    return start<false>(OpState::shutdown(), std::forward<Token>(token));
  }

  // A read would make progress without the socket: decrypted bytes or whole
  // records not yet read (in OpenSSL, the RecordStream or the BIO's block),
  // or, after the hand-over, an end (close_notify, an error) to report.
  bool has_pending_plaintext() const noexcept;

  // A read that never waits (no read may be outstanding): the bytes
  // OpenSSL can give now, or asio::error::would_block when it needs the
  // socket (then use async_read_some); other errors as async_read_some's.
  // After async_wait_readable it usually succeeds without a second trip
  // through the executor.
  std::size_t read_some_now(void* data, std::size_t size, boost::system::error_code& ec);

  // A write that never waits (no write may be outstanding): at most one
  // record from the front of `buffers` (coalesced as async_write_some
  // does), when the socket takes it now. Returns the bytes written, or 0
  // with asio::error::would_block; other errors as async_write_some's.
  // Contract: after would_block, the next write on this stream must carry
  // the same bytes from the same start (OpenSSL may hold them encrypted and
  // half-sent, and its retry rule wants them again): the caller writes the
  // whole rest asynchronously, which is what a "write now, then the rest"
  // caller does anyway.
  template <class ConstBufferSequence>
  std::size_t write_some_now(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    return write_now(write_state(buffers), ec);
  }

  // I/O pool blocks ever allocated on this thread (tests).
  static std::size_t scratch_blocks_allocated() noexcept;

 private:
  static constexpr std::size_t kRecordSize = 16 * 1024;  // TLS max plaintext per record
  static constexpr std::size_t kMaxGather = 64;

  enum class Want : std::uint8_t { kNothing, kRead, kWrite };
  static Want wants(RecordStream::Need n) noexcept {
    static_assert(static_cast<int>(RecordStream::Need::kRead) == static_cast<int>(Want::kRead) &&
                  static_cast<int>(RecordStream::Need::kWrite) == static_cast<int>(Want::kWrite));
    return static_cast<Want>(n);
  }

  // One piece of a gathered write.
  struct Piece {
    const void* data;
    std::size_t size;
  };

  // What one operation is doing; not a template, so the OpenSSL side lives
  // in the .cc. Move-only: it may own a coalescing block.
  struct OpState {
    enum class Kind : std::uint8_t { kHandshake, kRead, kWrite, kShutdown };
    static OpState handshake(bool client);
    static OpState read(void* data, std::size_t size);
    static OpState write(const Piece* pieces, std::size_t count);
    static OpState shutdown();

    explicit OpState(Kind k) : kind(k) {}
    OpState(OpState&& o) noexcept
        : kind(o.kind), client(o.client), started(o.started), data(o.data), size(o.size),
          block(std::exchange(o.block, nullptr)), n(o.n), ec(o.ec) {}
    OpState& operator=(OpState&&) = delete;
    ~OpState() {
      if (block != nullptr) give_io_block(block);
    }

    Kind kind;
    bool client = false;   // handshake
    bool started = false;  // handshake: connect/accept state set
    void* data = nullptr;  // read target, or write source (the caller's or `block`)
    std::size_t size = 0;
    char* block = nullptr;  // owned coalescing block (write)
    std::size_t n = 0;      // result
    boost::system::error_code ec;
  };

  template <bool kWithSize>
  class IoOp {
   public:
    IoOp(TlsSocketStream& s, OpState st) : s_(&s), st_(std::move(st)) {}

    template <class Self>
    void operator()(Self& self, boost::system::error_code wait_ec = {}) {
      if (phase_ == Phase::kPosted) return complete(self);
      if (phase_ == Phase::kWaiting && wait_ec) {
        s_->abandon(st_, wait_ec);
        return complete(self);
      }
      const Want want = s_->step(st_);
      if (want != Want::kNothing) {
        if (self.cancelled() == boost::asio::cancellation_type::none) {
          phase_ = Phase::kWaiting;
          // The BIO saw EAGAIN in this very step and marked the socket, so
          // this queues without a system call (socket_readiness.h).
          base::async_wait_ready(s_->socket_,
                                 want == Want::kRead ? next_layer_type::wait_read
                                                     : next_layer_type::wait_write,
                                 std::move(self));
          return;
        }
        s_->abandon(st_, boost::asio::error::operation_aborted);
      }
      if (phase_ == Phase::kStart) {
        // Done without waiting: complete from the executor, never inline.
        phase_ = Phase::kPosted;
        s_->finish(st_);
        auto ex = s_->get_executor();
        boost::asio::post(ex, std::move(self));
        return;
      }
      complete(self);
    }

   private:
    enum class Phase : std::uint8_t { kStart, kWaiting, kPosted };

    template <class Self>
    void complete(Self& self) {
      s_->finish(st_);
      const boost::system::error_code ec = st_.ec;
      if constexpr (kWithSize) {
        self.complete(ec, st_.n);
      } else {
        self.complete(ec);
      }
    }

    TlsSocketStream* s_;
    OpState st_;
    Phase phase_ = Phase::kStart;
  };

  // A write of the front of `buffers`: at most one record, small buffers
  // coalesced into it.
  template <class ConstBufferSequence>
  static OpState write_state(const ConstBufferSequence& buffers) {
    // Left uninitialized but for the pieces found (Piece is trivial):
    // const_buffer's default constructor would zero all kMaxGather of them
    // on every write.
    Piece pieces[kMaxGather];
    std::size_t count = 0, total = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers),
              end = boost::asio::buffer_sequence_end(buffers);
         it != end && count < kMaxGather && total < kRecordSize; ++it) {
      boost::asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      pieces[count++] = Piece{b.data(), b.size()};
      total += b.size();
    }
    // g++ may warn that `pieces` could be read uninitialized (a const
    // pointer to a partly set array; seen with profile-guided inlining):
    // write() reads only the first `count`.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
    return OpState::write(pieces, count);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  }

  template <bool kWithSize, class Token>
  auto start(OpState st, Token&& token) {
    using Sig = std::conditional_t<kWithSize, void(boost::system::error_code, std::size_t),
                                   void(boost::system::error_code)>;
    return boost::asio::async_compose<Token, Sig>(IoOp<kWithSize>(*this, std::move(st)), token,
                                                  socket_);
  }

  std::size_t write_now(OpState st, boost::system::error_code& ec);
  // One OpenSSL call (or a short series); never blocks. kNothing: `st` has
  // its result (ec, n).
  Want step(OpState& st);
  // The operation ends with `ec` before OpenSSL finished it.
  void abandon(OpState& st, const boost::system::error_code& ec);
  // Returns the coalescing block, if any.
  static void finish(OpState& st) {
    if (st.block != nullptr) {
      give_io_block(st.block);
      st.block = nullptr;
      st.data = nullptr;
    }
  }
  Want flush_owed(boost::system::error_code& ec);
  Want failed(int rc, boost::system::error_code& ec);
  // After a server handshake: TLS 1.3 goes on without OpenSSL (see above).
  void hand_over();

 public:
  // What the BIO reads and writes (public for the BIO callbacks in the .cc).
  struct Io {
    // The socket read and written (its fd is -1 once closed: EBADF, never
    // a reused fd), and marked for readiness.
    next_layer_type* socket = nullptr;
    int error = 0;     // errno of the last failed send/recv (not EAGAIN)
    bool eof = false;  // recv saw the peer's FIN
    // Bytes read from the socket, not yet given to OpenSSL: OpenSSL reads a
    // record at a time (no read-ahead), so what follows the handshake stays
    // here for the RecordStream. A pool block, held only while not empty.
    char* in = nullptr;
    std::uint32_t in_begin = 0, in_end = 0;
    // Records written so far (the write side's framing, followed across
    // partial sends), to know how many the server's traffic key sealed;
    // followed only until the handshake is done.
    bool counting = true;
    std::uint64_t records_written = 0;
    std::uint32_t record_left = 0;  // body bytes of the current record still to come
    std::uint8_t header_have = 0;
    std::uint8_t header_len[2] = {};
    // The handshake's application traffic secrets (keylog_callback); freed
    // at the hand-over.
    struct Secrets {
      ~Secrets();  // wipes them
      unsigned char client[RecordCipher::kMaxSecret];
      unsigned char server[RecordCipher::kMaxSecret];
      std::uint8_t client_len = 0, server_len = 0;
      std::uint64_t server_records_before = 0;  // records written before the server's key
    };
    std::unique_ptr<Secrets> secrets;
  };

 private:
  next_layer_type socket_;
  SSL* ssl_ = nullptr;
  Io io_;
  // A write cancelled while OpenSSL held a half-sent record: OpenSSL requires
  // the same write to be retried before anything else is written, so its
  // bytes are kept here and flushed by the next write or the shutdown.
  std::unique_ptr<char[]> owed_;
  std::size_t owed_size_ = 0;
  // After the hand-over: the connection's records, and what was asked of
  // the SSL object before it went.
  std::unique_ptr<RecordStream> rec_;
  bool reused_ = false;
  std::uint8_t alpn_len_ = 0;
  char alpn_[32] = {};
};

}  // namespace sag::tls
