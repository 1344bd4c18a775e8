#include "session/http1/http1_session.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string>

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/flat_static_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/base/asio_prelude.h"
#include "config/base/block_cache.h"
#include "config/base/socket_readiness.h"
#include "session/chunked_decoder.h"
#include "session/client_port.h"
#include "session/exchange.h"
#include "session/forward/forwarder.h"
#include "session/head_writer.h"
#include "session/http1/client_framing.h"
#include "session/write_now.h"
#include "session/request_fill.h"
#include "session/request_head.h"

namespace sag::session {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

using base::kTuple;
constexpr size_t kReadChunk = 4096;

// A block of the thread's cache to write a head into, for one write.
struct HeadBlock {
  static constexpr size_t kSize = base::BlockCache::kMaxBlock;
  HeadBlock() : data(static_cast<char*>(base::BlockCache::take(kSize))) {}
  ~HeadBlock() { base::BlockCache::give(data, kSize); }
  HeadBlock(const HeadBlock&) = delete;
  HeadBlock& operator=(const HeadBlock&) = delete;
  char* data;
};

// Completes when a read would make progress, without a buffer.
auto wait_readable(TlsStream& s) { return s.async_wait_readable(kTuple); }
auto wait_readable(PlainStream& s) { return base::async_wait_ready(s, PlainStream::wait_read, kTuple); }

// A read that never waits: after wait_readable, the bytes come without a
// second trip through the executor; asio::error::would_block when none are
// there after all.
size_t read_now(TlsStream& s, asio::mutable_buffer b, boost::system::error_code& ec) {
  return s.read_some_now(b.data(), b.size(), ec);
}
size_t read_now(PlainStream& s, asio::mutable_buffer b, boost::system::error_code& ec) {
  return base::receive_now(s, b, ec);
}

template <class Stream>
class Http1Session {
 public:
  Http1Session(Stream& stream, ClientConnection& conn)
      : stream_(stream), conn_(conn), w_(conn.worker), cfg_(conn.gen->config),
        forwarder_(conn, pin_, conn.deadline) {}

  // The connection's requests, one after another. The session lives in
  // this coroutine's frame (no second frame for a run() of its own: an idle
  // connection keeps every frame it waits in).
  static awaitable<void> serve(Stream& stream, ClientConnection& conn) {
    Http1Session s(stream, conn);
    bool first = true;
    for (;;) {
      // A reload's generation is taken between requests: for the wait for
      // the next request (its timeouts, limits) and again once it arrived.
      s.take_generation();
      // Its listener is gone (a reload removed it): it ends here, between
      // requests, as on a graceful stop.
      if (conn.gen != s.w_.current) co_return;
      if (!co_await s.read_head(first)) co_return;
      s.take_generation();
      first = false;
      if (!co_await s.serve_request()) co_return;
      if (s.w_.stopping) co_return;
    }
  }

 private:
  // The client side of one exchange, for the Forwarder.
  class Port final : public ClientPort {
   public:
    // `body_left`: the request body's declared length (0 when chunked or
    // body-less).
    Port(Http1Session& s, uint64_t body_left, bool keep_alive)
        : s_(s), body_left_(body_left), keep_alive_(keep_alive) {}

    bool has_body() const override {
      return s_.chunked_ ? !s_.chunked_->done() : body_left_ > 0;
    }
    bool body_buffered() const override { return s_.in_.size() > 0; }

    awaitable<BodyRead> read_body(char* buf, size_t cap) override {
      // 100 Continue only before the first body byte was asked for: once
      // body bytes arrived (or were read) it would land inside the body.
      const bool send_continue = s_.scan_.expect_continue && !continue_checked_ && s_.in_.size() == 0;
      continue_checked_ = true;
      if (send_continue) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        s_.conn_.deadline.arm_after(s_.cfg_->timeouts.client, &s_.conn_.lowest);
        auto [ec, n] = co_await asio::async_write(s_.stream_, asio::buffer(kContinue), kTuple);
        if (ec) co_return BodyRead{false};
      }
      if (s_.chunked_) co_return co_await read_chunked(*s_.chunked_, buf, cap);
      if (body_left_ == 0) co_return BodyRead{true, 0, true};
      const size_t want = static_cast<size_t>(std::min<uint64_t>(cap, body_left_));
      size_t got = std::min(want, s_.in_.size());
      if (got > 0) {
        std::memcpy(buf, s_.in_.data().data(), got);
        s_.in_.consume(got);
      } else {
        // Straight into the caller's buffer, never past the body's end:
        // what follows it is the next request.
        s_.conn_.deadline.arm_after(s_.cfg_->timeouts.client, &s_.conn_.lowest);
        auto [ec, n] = co_await s_.stream_.async_read_some(asio::buffer(buf, want), kTuple);
        if (ec) {
          if (s_.conn_.deadline.fired()) co_await s_.answer(GatewayError::kBodyTimeout);
          co_return BodyRead{false};
        }
        got = n;
      }
      body_left_ -= got;
      co_return BodyRead{true, got, body_left_ == 0};
    }

    // A chunked body goes through ChunkedDecoder rather than Beast, so no
    // framing is ever buffered: each cap fails at once with its status.
    awaitable<BodyRead> read_chunked(ChunkedDecoder& d, char* buf, size_t cap) {
      for (;;) {
        if (d.done()) co_return BodyRead{true, 0, true};
        if (s_.in_.size() > 0) {
          const auto step = d.decode(s_.view(), buf, cap);
          s_.in_.consume(step.consumed);
          if (d.failed()) {
            co_await s_.answer(ChunkedDecoder::gateway_error(d.error()), ChunkedDecoder::reason_of(d.error()));
            co_return BodyRead{false};
          }
          if (step.produced > 0 || d.done()) co_return BodyRead{true, step.produced, d.done()};
        }
        s_.conn_.deadline.arm_after(s_.cfg_->timeouts.client, &s_.conn_.lowest);
        auto [ec, n] = co_await s_.stream_.async_read_some(s_.in_.prepare(cap), kTuple);
        if (ec) {
          if (s_.conn_.deadline.fired()) co_await s_.answer(GatewayError::kBodyTimeout);
          co_return BodyRead{false};
        }
        s_.in_.commit(n);
      }
    }

    bool send_head_now(Response& res, const ResponseFraming& framing, const char* data, size_t n,
                       bool last, bool& sent) override {
      if (!last || prepare_head(res, framing)) return false;  // chunked: the serializer's
      // The whole response is here: head and body in one write, the head
      // written flat (no serializer).
      HeadBlock& head = head_.emplace();
      head_size_ = write_head(res, head.data, HeadBlock::kSize);
      if (head_size_ == 0) {
        head_.reset();
        return false;
      }
      // A body that fits goes after the head in its block: one buffer is a
      // send() rather than a sendmsg() with an iovec for the kernel to
      // import, and on TLS a record sealed without the stream's coalescing.
      body_in_head_ = n <= HeadBlock::kSize - head_size_;
      if (body_in_head_ && n > 0) std::memcpy(head.data + head_size_, data, n);
      const std::array<asio::const_buffer, 2> out{
          asio::buffer(head.data, head_size_ + (body_in_head_ ? n : 0)),
          asio::buffer(data, body_in_head_ ? 0 : n)};
      boost::system::error_code ec;
      head_sent_ = body_in_head_ ? write_now(s_.stream_, out[0], ec)
                                 : write_now(s_.stream_, out, ec);
      s_.x_.bytes += head_sent_;
      if (ec == asio::error::would_block) ec = {};
      if (ec || head_sent_ == head_size_ + n) {
        head_.reset();
        sent = !ec;
        return true;
      }
      return false;  // send_head() writes the rest
    }

    awaitable<bool> send_head(Response& res, const ResponseFraming& framing, const char* data,
                              size_t n, bool last) override {
      if (!head_) {
        bool sent = false;
        if (send_head_now(res, framing, data, n, last, sent)) co_return sent;
      }
      if (head_) {  // the rest of what send_head_now() began
        const std::array<asio::const_buffer, 2> out{
            asio::buffer(head_->data, head_size_ + (body_in_head_ ? n : 0)),
            asio::buffer(data, body_in_head_ ? 0 : n)};
        beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(out);
        rest.consume(head_sent_);
        s_.conn_.deadline.arm_after(s_.cfg_->timeouts.client, &s_.conn_.lowest);
        auto [ec, wn] = co_await asio::async_write(s_.stream_, rest, kTuple);
        s_.x_.bytes += wn;
        head_.reset();
        co_return !ec;
      }
      prepare_head(res, framing);
      res_ = &res;
      rs_.emplace(res);
      if (!last && n == 0) {
        s_.conn_.deadline.arm_after(s_.cfg_->timeouts.client, &s_.conn_.lowest);
        auto [ec, wn] = co_await http::async_write_header(s_.stream_, *rs_, kTuple);
        s_.x_.bytes += wn;
        co_return !ec;
      }
      auto outcome = co_await send_body(data, n, last);
      co_return outcome;
    }

    awaitable<bool> send_body(const char* data, size_t n, bool last) override {
      auto& body = res_->body();
      body.data = n ? const_cast<char*>(data) : nullptr;
      body.size = n;
      body.more = !last;
      s_.conn_.deadline.arm_after(s_.cfg_->timeouts.client, &s_.conn_.lowest);
      auto [ec, wn] = co_await http::async_write(s_.stream_, *rs_, kTuple);
      s_.x_.bytes += wn;
      if (ec == http::error::need_buffer) ec = {};
      co_return !ec;
    }

    void abort() override { keep_alive_ = false; }

    awaitable<void> answer(GatewayError e, std::string_view detail,
                           std::string_view extra_headers) override {
      co_await s_.answer(e, detail, extra_headers);
    }

    bool client_gone() const override { return false; }
    bool can_tunnel() const override { return true; }
    awaitable<uint64_t> tunnel(Response& res, tcp::socket& up,
                               beast::flat_static_buffer_base& up_in) override {
      auto outcome = co_await s_.tunnel(res, up, up_in);
      co_return outcome;
    }

    bool keep_alive() const { return keep_alive_; }

   private:
    // The head's framing and connection fields for this client; returns
    // whether the body goes chunked. May run twice for one head.
    bool prepare_head(Response& res, const ResponseFraming& framing) {
      keep_alive_ = keep_alive_ && !s_.w_.stopping;
      return frame_for_client(res, framing, s_.http10_, keep_alive_);
    }

    Http1Session& s_;
    uint64_t body_left_;
    bool keep_alive_;
    bool continue_checked_ = false;
    Response* res_ = nullptr;  // what rs_ serializes (it only gives const access)
    std::optional<http::response_serializer<http::buffer_body, Fields>> rs_;
    // A flat head send_head_now() wrote head_sent_ bytes of (with the body
    // after it, in the block when body_in_head_); held only until
    // send_head() wrote the rest.
    std::optional<HeadBlock> head_;
    size_t head_size_ = 0;
    size_t head_sent_ = 0;
    bool body_in_head_ = false;
  };

  // The scan's limits, from the generation's config (not kept per connection).
  HeadLimits limits() const {
    const auto& l = cfg_->limits;
    return {static_cast<size_t>(l.max_header_bytes), static_cast<size_t>(l.max_request_line),
            l.max_headers};
  }
  void take_generation() {
    if (conn_.refresh()) cfg_ = conn_.gen->config;
  }

  // Reads until a complete, valid request head is buffered. False: close
  // (an error was answered, the client left, or the idle timeout passed).
  awaitable<bool> read_head(bool first) {
    const auto& t = cfg_->timeouts;
    bool got_byte = false;
    x_.reset();
    if (first) {
      x_.start = conn_.accepted;
      x_.start_wall = conn_.accepted_wall;
      conn_.deadline.arm(conn_.accepted + t.http_request, &conn_.lowest);
    } else {
      conn_.deadline.arm_after(t.keepalive, &conn_.lowest);
    }
    size_t scanned = 0;  // bytes already known to hold no complete line
    bool started_now = false;  // x_.start was read in this pass of the loop
    for (;;) {
      if (in_.size() > 0) {
        if (size_t skip = leading_empty_lines(view()); skip > 0) {
          in_.consume(skip);
          scanned = 0;
        }
      }
      if (in_.size() > 0) {
        if (!got_byte) {
          got_byte = true;
          if (!first) {
            // The wall time is derived when the access log needs it.
            x_.start = Clock::now();
            started_now = true;
            conn_.deadline.arm(x_.start + t.http_request, &conn_.lowest);
          }
        }
        // Rescan only when a line may have completed or a limit may be hit,
        // so a head dribbled byte by byte costs linear, not quadratic, work.
        std::string_view v = view();
        const HeadLimits limits = this->limits();
        if (std::memchr(v.data() + scanned, '\n', v.size() - scanned) != nullptr ||
            v.size() > limits.max_request_line || v.size() > limits.max_header_bytes) {
          // The request is built in the same pass (kept only when complete).
          auto req = base::make_pooled<Request>();
          RequestFill fill(*req);
          scan_ = scan_request_head(v, limits, &fill);
          if (scan_.state == HeadScan::State::kComplete) {
            req_ = std::move(req);
            // A head whole in the read that started it took no time to come.
            x_.head_done = started_now ? x_.start : Clock::now();
            co_return true;
          }
          if (scan_.state == HeadScan::State::kError) {
            raw_request_line(v, x_.method, x_.path);
            co_await answer(head_error(scan_.status), scan_.reason);
            co_return false;
          }
        }
        scanned = v.size();
      }
      started_now = false;  // what is parsed next comes with a later read
      if (w_.stopping && !got_byte && !first) co_return false;
      // Idle (closed by a graceful stop) only between requests: a new
      // connection's first request is on its way (its client sent it right
      // after connecting, maybe to a process being upgraded), and waiting
      // for it is bounded by timeouts.http_request.
      conn_.idle = !got_byte && !first;
      boost::system::error_code ec;
      size_t n = 0;
      bool read = false;
      if (in_.size() == 0) {
        // Nothing buffered: the buffer goes back to the worker's cache
        // while the client is silent, and is taken again when bytes come.
        in_.shrink_to_fit();
        std::tie(ec) = co_await wait_readable(stream_);
        if (!ec) {
          n = read_now(stream_, in_.prepare(kReadChunk), ec);
          read = ec != asio::error::would_block;
          if (!read) ec = {};
        }
      }
      // A graceful stop cancels only a wait that is pending: one that had
      // already completed (its resumption queued) when begin_stop ran must
      // not be followed by a read that nobody cancels.
      if (!ec && !read) {
        if (w_.stopping && !got_byte && !first) co_return false;
        std::tie(ec, n) = co_await stream_.async_read_some(in_.prepare(kReadChunk), kTuple);
      }
      conn_.idle = false;
      if (ec) {
        if (got_byte && conn_.deadline.fired()) {
          raw_request_line(view(), x_.method, x_.path);
          co_await answer(GatewayError::kHeadTimeout);
        }
        co_return false;
      }
      in_.commit(n);
    }
  }

  std::string_view view() const {
    return {static_cast<const char*>(in_.data().data()), in_.size()};
  }

  // Handles the request whose head is buffered. True: read the next one.
  awaitable<bool> serve_request() {
    if (scan_.has_content_length && cfg_->limits.max_body > 0 &&
        scan_.content_length > cfg_->limits.max_body) {
      raw_request_line(view(), x_.method, x_.path);
      co_await answer(GatewayError::kBodyTooLarge);
      co_return false;
    }
    // The request and the port are held through pointers so this frame
    // stays small enough for Asio to recycle (base::make_pooled).
    auto req_ptr = std::move(req_);  // built by read_head's scan; owns its fields
    auto& req = *req_ptr;
    in_.consume(scan_.head_length);
    if (in_.size() == 0) in_.shrink_to_fit();  // not held through the server's wait
    x_.method.assign(req.method_string());
    x_.path.assign(req.target());
    http10_ = scan_.http10;
    x_.protocol = http10_ ? "HTTP/1.0" : "HTTP/1.1";

    // Absolute form (RFC 9112 §3.2.2): its authority replaces Host.
    std::string_view target = req.target();
    if (target.starts_with("http://") || target.starts_with("https://")) {
      size_t scheme_end = target.find("://") + 3;
      size_t slash = target.find('/', scheme_end);
      std::string authority(target.substr(scheme_end, slash - scheme_end));
      std::string path(slash == std::string_view::npos ? "/" : target.substr(slash));
      if (authority.empty()) {
        co_await answer(GatewayError::kBadTarget);
        co_return false;
      }
      req.set(http::field::host, authority);
      req.target(path);
      x_.path = path;
    }
    // Identical duplicates passed the scan as one length: forward one.
    if (scan_.content_length_fields > 1) req.set(http::field::content_length, std::to_string(scan_.content_length));
    chunked_.reset();
    if (scan_.chunked) {
      req.chunked(true);
      ChunkedDecoder::Limits dl;
      dl.max_trailers = cfg_->limits.max_header_bytes;
      dl.max_body = cfg_->limits.max_body;
      chunked_.emplace(dl);
    }
    const uint64_t body_left = scan_.chunked || !scan_.has_content_length ? 0 : scan_.content_length;
    auto port = base::make_pooled<Port>(*this, body_left, req.keep_alive());
    const bool clean = co_await forwarder_.forward(req, *port, x_);
    co_return clean && port->keep_alive();
  }

  // WebSocket (and only that): after the server's 101, bytes go both ways
  // untouched until either side closes or nothing moves for
  // timeouts.client. Returns the bytes sent to the client.
  awaitable<uint64_t> tunnel(ClientPort::Response& res, tcp::socket& up,
                             beast::flat_static_buffer_base& up_in) {
    uint64_t sent = 0;
    {
      auto& body = res.body();
      body.data = nullptr;
      body.size = 0;
      body.more = false;
      http::response_serializer<http::buffer_body, Fields> rs{res};
      conn_.deadline.arm_after(cfg_->timeouts.client, &conn_.lowest);
      auto [ec, n] = co_await http::async_write_header(stream_, rs, kTuple);
      sent += n;
      if (ec) co_return sent;
    }
    // Its own idle timer rather than the connection's Deadline: idling out
    // must cancel both sockets (either side may be the one blocked), and the
    // Deadline cancels one.
    conn_.deadline.disarm();
    conn_.idle = false;
    auto last_activity = Clock::now();
    bool done = false;
    asio::steady_timer idle(w_.io);
    auto finish = [&] {
      if (done) return;
      done = true;
      beast::error_code ignored;
      up.cancel(ignored);
      conn_.lowest.cancel(ignored);
      idle.cancel();
    };
    // Bytes each side sent before the tunnel began go first.
    auto client_to_server = [&]() -> awaitable<void> {
      if (in_.size() > 0) {
        auto [ec, n] = co_await asio::async_write(up, in_.data(), kTuple);
        if (ec) {
          finish();
          co_return;
        }
        in_.consume(n);
      }
      BufferPool::Lease lease(w_.buffers);
      while (!done) {
        auto [ec, n] = co_await stream_.async_read_some(
            asio::buffer(lease.buf.get(), BufferPool::kSize), kTuple);
        if (done) break;
        if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
          // The client is done sending (after its close frame, typically),
          // not done reading: the half-close goes on to the server, whose
          // answer (its close frame) still reaches the client. The tunnel
          // ends when the server closes too, or at the idle timeout.
          beast::error_code ignored;
          up.shutdown(tcp::socket::shutdown_send, ignored);
          co_return;
        }
        if (ec) break;
        last_activity = Clock::now();
        auto [wec, wn] = co_await asio::async_write(up, asio::buffer(lease.buf.get(), n), kTuple);
        if (wec) break;
      }
      finish();
    };
    auto server_to_client = [&]() -> awaitable<void> {
      if (up_in.size() > 0) {
        auto [ec, n] = co_await asio::async_write(stream_, up_in.data(), kTuple);
        sent += n;
        if (ec) {
          finish();
          co_return;
        }
        up_in.consume(n);
      }
      BufferPool::Lease lease(w_.buffers);
      while (!done) {
        auto [ec, n] = co_await up.async_read_some(
            asio::buffer(lease.buf.get(), BufferPool::kSize), kTuple);
        if (ec || done) break;
        last_activity = Clock::now();
        auto [wec, wn] =
            co_await asio::async_write(stream_, asio::buffer(lease.buf.get(), n), kTuple);
        sent += wn;
        if (wec) break;
      }
      finish();
    };
    auto watch_idle = [&]() -> awaitable<void> {
      while (!done) {
        const auto at = last_activity + cfg_->timeouts.client;
        if (Clock::now() >= at) break;
        idle.expires_at(at);
        co_await idle.async_wait(kTuple);
      }
      finish();
    };
    co_await (client_to_server() && server_to_client() && watch_idle());
    co_return sent;
  }

  // Answers with a short text body and closes afterwards.
  awaitable<void> answer(GatewayError e, std::string_view detail = {},
                         std::string_view extra_headers = {}) {
    const unsigned status = info(e).status;
    const std::string_view reason = detail.empty() ? std::string_view(info(e).text) : detail;
    answer_.clear();
    answer_ += "HTTP/1.1 ";
    answer_ += std::to_string(status);
    answer_ += ' ';
    answer_ += http::obsolete_reason(static_cast<http::status>(status));
    answer_ += "\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nContent-Length: ";
    answer_ += std::to_string(reason.size() + 1);
    answer_ += "\r\n";
    answer_ += extra_headers;
    // 503 before the body was read, and every protocol error, close.
    answer_ += "Connection: close\r\n\r\n";
    answer_ += reason;
    answer_ += '\n';
    conn_.deadline.arm_after(cfg_->timeouts.client, &conn_.lowest);
    conn_.linger = true;
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(answer_), kTuple);
    x_.answered(e, n);
    finish_exchange(conn_, x_);
  }

  Stream& stream_;
  ClientConnection& conn_;
  WorkerContext& w_;
  // The connection's generation's config (ClientConnection::refresh).
  const config::GatewayConfig* cfg_;
  ConnectionPin pin_;
  Forwarder forwarder_;
  // Request bytes read and not yet consumed; empty and without storage
  // while the connection waits for its client or for a server.
  beast::basic_flat_buffer<base::PoolAllocator<char>> in_;
  HeadScan scan_;
  base::Pooled<Request> req_;  // read_head's scan built it; serve_request takes it
  std::optional<ChunkedDecoder> chunked_;  // the current request's, when chunked
  Exchange x_;
  bool http10_ = false;
  std::string answer_;
};

}  // namespace

awaitable<void> serve_http1(PlainStream& stream, ClientConnection& conn) {
  return Http1Session<PlainStream>::serve(stream, conn);
}

awaitable<void> serve_http1(TlsStream& stream, ClientConnection& conn) {
  return Http1Session<TlsStream>::serve(stream, conn);
}

}  // namespace sag::session
