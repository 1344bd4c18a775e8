#include "session/http2/http2_session.h"

#include <nghttp2/nghttp2.h>

#include <memory>
#include <new>
#include <tuple>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>

#include "config/base/asio_prelude.h"
#include "config/base/spawn_inline.h"
#include "session/client_port.h"
#include "session/exchange.h"
#include "session/forward/forwarder.h"
#include "session/http2/h2_body_out.h"
#include "session/http2/h2_output.h"
#include "session/http2/h2_port.h"
#include "session/http2/h2_request.h"
#include "session/http2/h2_stream.h"
#include "session/http2/h2_stream_pool.h"
#include "session/http2/h2_settings.h"
#include "session/write_now.h"

namespace sag::session {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

namespace {

// g++ 12 miscompiles `co_return co_await f();` (the awaiting frame resumes
// after it was freed): results go to a local first.
using base::kTuple;
constexpr size_t kReadSize = 16 * 1024;
constexpr size_t kPooledWhenIdle = 4;         // stream objects an idle connection keeps
constexpr std::chrono::seconds kTrimAfter{1};  // idle this long: keep only those

// Over TLS, or a plain socket for the fuzz target and tests; the stream type
// is a template parameter (as for Http1Session): no virtual calls.
template <class Stream>
class Http2Session {
 public:
  Http2Session(Stream& stream, ClientConnection& conn)
      : stream_(stream), conn_(conn), w_(conn.worker), held_(conn.gen), cfg_(*held_->config),
        ex_(stream.get_executor()), pool_(ex_, w_.deadlines, conn_, pin_),
        out_(cfg_.limits.h2_max_concurrent_streams), write_signal_(ex_), all_done_(ex_) {}

  ~Http2Session() {
    if (ng_) nghttp2_session_del(ng_);
  }

  awaitable<void> run() {
    if (!init()) co_return;
    try {
      co_await (reader() && writer());
    } catch (const std::exception&) {
      // Only allocation failure can get here; the streams below must still
      // end before this object goes away.
    }
    // Streams still running see the client gone and end.
    dead_ = true;
    for (auto& p : pool_.all()) {
      if (!p->started || p->done) continue;
      p->sig.notify();
      p->deadline.cancel_now();
    }
    while (running_ > 0) co_await all_done_.wait_until(Clock::time_point::max());
  }

 private:
  // The client side of one stream, for the Forwarder (h2_port.h).
  using Port = H2Port<Http2Session>;
  friend Port;

  bool init() {
    static constexpr H2Callbacks kCallbacks{&on_begin_headers, &on_header,       &on_frame_recv,
                                            &on_data_chunk_recv, &on_stream_close, &on_frame_send};
    ng_ = new_h2_server_session(kCallbacks, this, cfg_.limits);
    // The first request's deadline (timeouts.http_request from accept) is
    // already armed; afterwards the connection idles out after keepalive.
    return ng_ != nullptr;
  }

  // ---- connection I/O ----------------------------------------------------

  awaitable<void> reader() {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[kReadSize]);
    while (!dead_ && !terminating_) {
      update_idle();
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(buf.get(), kReadSize), kTuple);
      if (ec) {
        // An idle timeout or a graceful stop: say goodbye properly.
        if (!dead_ && (conn_.deadline.fired() || w_.stopping) &&
            ec == asio::error::operation_aborted) {
          terminate(NGHTTP2_NO_ERROR);
        } else {
          dead_ = true;
        }
        break;
      }
      read_at_ = Clock::now();
      in_nghttp2_ = true;
      const ssize_t rv = nghttp2_session_mem_recv(ng_, buf.get(), n);
      in_nghttp2_ = false;
      if (rv == NGHTTP2_ERR_FLOODED) {
        // The peer doesn't read what its own frames make us send, so a
        // GOAWAY would sit behind megabytes it won't take: reset now.
        boost::system::error_code ignored;
        conn_.lowest.set_option(asio::socket_base::linger(true, 0), ignored);
        conn_.lowest.close(ignored);
        dead_ = true;
        break;
      }
      if (rv < 0) {
        // A protocol error (nghttp2's limits included): GOAWAY, then close,
        // lingering so that unread input doesn't turn the close into a
        // reset that destroys the GOAWAY.
        conn_.linger = true;
        terminate(NGHTTP2_PROTOCOL_ERROR);
        break;
      }
      write_signal_.notify();
      if (!nghttp2_session_want_read(ng_) && !nghttp2_session_want_write(ng_)) break;
    }
    reader_done_ = true;
    write_signal_.notify();
  }

  awaitable<void> writer() {
    for (;;) {
      if (!pack()) break;
      if (!out_.empty()) {
        // What the socket takes at once needs no executor trip; the rest
        // goes out asynchronously (the same bytes: OpenSSL's retry rule).
        boost::system::error_code ec;
        const size_t done = write_all_now(stream_, out_.data(), out_.size(), ec);
        if (!ec && done < out_.size()) {
          writing_ = true;
          update_idle();
          std::tie(ec, std::ignore) = co_await asio::async_write(
              stream_, asio::buffer(out_.data() + done, out_.size() - done), kTuple);
          writing_ = false;
          update_idle();
        }
        out_.clear();
        if (ec) break;  // (dead_ is set below)
        continue;
      }
      if (!nghttp2_session_want_read(ng_) && !nghttp2_session_want_write(ng_)) break;
      if (reader_done_ && (dead_ || terminating_ || running_ == 0)) break;
      // Idle with more stream objects than an idle connection keeps: drop
      // them if it stays idle (a gap between two bursts of streams doesn't).
      const bool trim = open_streams_ == 0 && running_ == 0 && pool_.size() > kPooledWhenIdle;
      const bool woken =
          co_await write_signal_.wait_until(trim ? Clock::now() + kTrimAfter : Clock::time_point::max());
      if (!woken && open_streams_ == 0 && running_ == 0) {
        last_found_ = nullptr;  // (trim frees objects)
        pool_.trim(kPooledWhenIdle);
      }
    }
    // The session is over; the reader may still wait for bytes that no longer matter.
    dead_ = true;
    if (!reader_done_) {
      boost::system::error_code ignored;
      conn_.lowest.cancel(ignored);
    }
  }

  // Makes nghttp2's frames (into out_, which the writer writes). A stream
  // calls it right after it submitted, so its frames are made while its
  // head and data are in cache and it ends without waiting: a burst of
  // responses reuses one stream's memory. Not inside nghttp2 (a stream may
  // start and answer within mem_recv). False when the session failed.
  bool pack() {
    if (writing_ || in_nghttp2_ || dead_) return !dead_;
    in_nghttp2_ = true;
    const bool ok = out_.pack(ng_);
    in_nghttp2_ = false;
    if (!ok) {
      dead_ = true;
      write_signal_.notify();
    }
    return ok;
  }

  // Ends the session: GOAWAY with `code` and the last stream processed.
  void terminate(uint32_t code) {
    if (!terminating_) nghttp2_session_terminate_session(ng_, code);
    terminating_ = true;
    write_signal_.notify();
  }

  // Graceful stop: GOAWAY (once): the client opens no more streams, running ones end.
  void announce_stop() {
    if (goaway_sent_ || dead_ || terminating_) return;
    goaway_sent_ = true;
    nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    write_signal_.notify();
  }

  // Resets a stream the gateway gives up on (once; not after it closed).
  void reset(H2Stream& st, uint32_t code) {
    if (st.closed || st.reset_sent || dead_) return;
    st.reset_sent = true;
    nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, st.id, code);
    write_signal_.notify();
  }

  // A graceful stop cancels idle connections' reads (WorkerContext::begin_stop):
  // idle is no stream running and no write under way, so no response is cut.
  void update_idle() { conn_.idle = running_ == 0 && !writing_; }

  // ---- nghttp2 callbacks (run inside mem_recv / mem_send) ----------------

  static Http2Session& self(void* user) { return *static_cast<Http2Session*>(user); }

  // The open stream `id` (null once closed: its object may serve another
  // one). nghttp2's callbacks come in runs for one stream (a header block's
  // fields, a response's frames), and its own lookup is a hash probe: the
  // last object found is asked first. Stream ids are never reused, so an
  // object whose id matches is that stream's (or, closed, none).
  H2Stream* find(int32_t id) {
    if (id <= 0) return nullptr;
    if (last_found_ == nullptr || last_found_->id != id) {
      auto* st = static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(ng_, id));
      if (!st || st->id != id) return nullptr;
      last_found_ = st;
    }
    return last_found_->closed ? nullptr : last_found_;
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& s = self(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (s.open_streams_ >= s.cfg_.limits.h2_max_concurrent_streams) {
      // Past the advertised limit: this stream alone is refused (the client
      // may retry it), the others go on.
      nghttp2_submit_rst_stream(s.ng_, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                NGHTTP2_REFUSED_STREAM);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    try {
      PooledStream& st = s.pool_.take(frame->hd.stream_id);
      if (!st.port) st.port.reset(new (std::nothrow) Port(s, st));  // (once per object)
      if (!st.port || nghttp2_session_set_stream_user_data(s.ng_, st.id, &st) != 0) {
        st.closed = true;
        s.pool_.release_if_unused(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      }
      ++s.open_streams_;
      s.last_found_ = &st;  // (its header fields come next)
      // The read that brought the stream's first frame; the wall-clock
      // start is derived from it when the access log is written.
      st.x.start = s.read_at_;
      st.x.protocol = "HTTP/2.0";
      st.req.version(11);
    } catch (const std::exception&) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name_p,
                       size_t namelen, const uint8_t* value_p, size_t valuelen, uint8_t,
                       void* user) {
    // Nothing may throw through nghttp2's C frames (an allocation may).
    try {
      return take_header(self(user), frame, name_p, namelen, value_p, valuelen);
    } catch (const std::exception&) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
  }

  static int take_header(Http2Session& s, const nghttp2_frame* frame, const uint8_t* name_p,
                         size_t namelen, const uint8_t* value_p, size_t valuelen) {
    H2Stream* st = s.find(frame->hd.stream_id);
    if (!st || frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers are dropped
    const std::string_view name(reinterpret_cast<const char*>(name_p), namelen);
    const std::string_view value(reinterpret_cast<const char*>(value_p), valuelen);
    return take_h2_header(*st, name, value, s.cfg_.limits) ? 0
                                                            : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& s = self(user);
    H2Stream* st = s.find(frame->hd.stream_id);
    if (!st) return 0;
    const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        if (end_stream) st->end_stream_in = true;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          st->x.head_done = s.read_at_;
          s.start_stream(*st);
        } else {
          st->sig.notify();
        }
        break;
      case NGHTTP2_DATA:
        if (end_stream) {
          st->end_stream_in = true;
          st->sig.notify();
        }
        break;
      default:
        break;
    }
    return 0;
  }

  static int on_data_chunk_recv(nghttp2_session* ng, uint8_t, int32_t stream_id,
                                const uint8_t* data, size_t len, void* user) {
    auto& s = self(user);
    H2Stream* st = s.find(stream_id);
    if (!st || st->done) {
      // Nobody will take it: give the window back at once.
      nghttp2_session_consume(ng, stream_id, len);
      return 0;
    }
    st->in.append(reinterpret_cast<const char*>(data), len);
    st->body_received += len;
    // The connection's window reopens at once, each stream's only as its
    // server takes the body (read_body): stalled uploads hold their own
    // windows, never the connection's; buffering stays <= streams x window.
    nghttp2_session_consume_connection(ng, len);
    st->sig.notify();
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t, void* user) {
    auto& s = self(user);
    H2Stream* found = s.find(stream_id);
    if (!found) return 0;
    H2Stream& st = *found;
    st.closed = true;
    --s.open_streams_;
    st.sig.notify();
    // Reset by the client (or for a protocol error) before the response
    // ended: whatever the stream waits for on its server is abandoned.
    if (!st.eof_sent) st.deadline.cancel_now();
    if (s.running_ == 0) s.conn_.deadline.arm_after(s.cfg_.timeouts.keepalive, &s.conn_.lowest);
    s.pool_.release_if_unused(st);
    return 0;
  }

  // The response's frames as they go out: the log's byte count (frame
  // headers included), and the moment the response is complete.
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    H2Stream* st = self(user).find(frame->hd.stream_id);
    if (!st) return 0;
    st->x.bytes += frame->hd.length + 9;
    if (frame->hd.type == NGHTTP2_HEADERS) st->head_out = true;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
      st->eof_sent = true;
      st->sig.notify();
    }
    return 0;
  }

  static ssize_t read_out(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void*) {
    return take_h2_body_out(*static_cast<H2Stream*>(source->ptr), buf, length, flags);
  }

  // ---- streams ------------------------------------------------------------

  void start_stream(H2Stream& st) {
    if (w_.stopping) {
      announce_stop();
      reset(st, NGHTTP2_REFUSED_STREAM);
      return;
    }
    // The request head is complete: the idle or first-request deadline
    // stops here (a header block never completed keeps it running).
    conn_.deadline.disarm();
    auto& ps = static_cast<PooledStream&>(st);
    st.started = true;
    ++running_;
    update_idle();
    if (st.closed || dead_) return end_stream(ps);
    // The stream's coroutine is forward() (or the refusal's answer), no frame
    // of ours around it, started inline (base::spawn_inline: this session's
    // run() keeps the io_context busy until the last stream ends);
    // end_stream() is its completion, also after a throw, and may run before
    // spawn_inline returns. Allocation failure here, inside nghttp2's
    // callback, ends the stream at once (reset); the connection goes on.
    auto end = [this, &ps](std::exception_ptr) noexcept { end_stream(ps); };
    ClientPort& port = *ps.port;
    try {
      if (auto refusal = finish_h2_request(st, cfg_.limits, port.has_body())) {
        base::spawn_inline(ex_, port.answer(refusal->error, refusal->detail, {}), end);
      } else {
        conn_.refresh();
        base::spawn_inline(ex_, ps.forwarder.forward(st.req, port, st.x), end);
      }
    } catch (const std::exception&) {
      end_stream(ps);
    }
  }

  void end_stream(PooledStream& st);

  Stream& stream_;
  ClientConnection& conn_;
  WorkerContext& w_;
  // Limits and timeouts: the generation the connection started on (streams route with the current).
  const std::shared_ptr<const WorkerGeneration> held_;
  const config::GatewayConfig& cfg_;
  asio::any_io_executor ex_;
  nghttp2_session* ng_ = nullptr;
  ConnectionPin pin_;
  H2StreamPool pool_;  // the stream objects, reused
  H2Stream* last_found_ = nullptr;  // find()'s last answer, in pool_ (or null)
  size_t open_streams_ = 0;  // open in nghttp2 (those with a stream object)
  size_t running_ = 0;       // streams whose coroutine runs
  Clock::time_point read_at_;  // of the bytes fed to nghttp2: their streams' start and head time
  H2Output out_;  // frames made and not yet written (pack(); the writer writes)
  Signal write_signal_;
  Signal all_done_;
  bool dead_ = false;         // the connection failed: no more I/O
  bool reader_done_ = false;
  bool terminating_ = false;  // GOAWAY queued to end the session
  bool goaway_sent_ = false;  // graceful stop announced
  bool writing_ = false;
  bool in_nghttp2_ = false;  // inside mem_recv or mem_send (their callbacks may start streams)
};

template <class Stream>
void Http2Session<Stream>::end_stream(PooledStream& st) {
  st.done = true;
  if (!dead_) {
    // Request body nobody will read goes back into the windows.
    if (const size_t left = st.in.size() - st.in_off; left > 0)
      nghttp2_session_consume_stream(ng_, st.id, left);
    // No response: INTERNAL_ERROR. A request still arriving after its
    // response ended is cut short with NO_ERROR (RFC 9113 §8.1).
    if (!st.submitted) {
      reset(st, NGHTTP2_INTERNAL_ERROR);
    } else if (!st.end_stream_in) {
      reset(st, NGHTTP2_NO_ERROR);
    }
  }
  st.deadline.disarm();
  --running_;
  pool_.release_if_unused(st);
  update_idle();
  if (running_ == 0) {
    if (w_.stopping && !dead_) terminate(NGHTTP2_NO_ERROR);
    conn_.deadline.arm_after(cfg_.timeouts.keepalive, &conn_.lowest);
    all_done_.notify();
  } else if (w_.stopping) {
    announce_stop();
  }
  write_signal_.notify();
}

}  // namespace

awaitable<void> serve_http2(TlsStream& stream, ClientConnection& conn) {
  Http2Session<TlsStream> session(stream, conn);
  co_await session.run();
}

awaitable<void> serve_http2(PlainStream& stream, ClientConnection& conn) {
  Http2Session<PlainStream> session(stream, conn);
  co_await session.run();
}

}  // namespace sag::session
