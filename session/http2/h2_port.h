// The client side of one HTTP/2 stream, as the Forwarder sees it
// (ClientPort): the request body from the stream's window, the response
// head and body submitted to nghttp2 and made into frames at once where
// they can be, the gateway's own answers, and the waits on the client.
//
// Session is Http2Session<Stream> (http2_session.cc, the only includer),
// which befriends this class: the port works on the session's nghttp2
// session, limits, writer signal and stream resets.
//
// Thread: the connection's worker. One per pooled stream object, made once
// and reused by every stream that object serves.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "session/client_port.h"
#include "session/exchange.h"
#include "session/gateway_error.h"
#include "session/http2/h2_request.h"
#include "session/http2/h2_stream.h"
#include "session/http_message.h"

namespace sag::session {

template <class Session>
class H2Port final : public ClientPort {
  template <class T>
  using awaitable = boost::asio::awaitable<T>;

 public:
  H2Port(Session& s, H2Stream& st) : s_(s), st_(st) {}

  bool has_body() const override { return !st_.end_stream_in || st_.in.size() > st_.in_off; }
  bool body_buffered() const override { return st_.in.size() > st_.in_off; }

  awaitable<BodyRead> read_body(char* buf, size_t cap) override {
    const uint64_t max_body = s_.cfg_.limits.max_body;
    for (;;) {
      if (st_.closed && !st_.end_stream_in) co_return BodyRead{false};
      if (s_.dead_) co_return BodyRead{false};
      if (max_body > 0 && st_.body_received > max_body) {
        co_await answer(GatewayError::kBodyTooLarge, {}, {});
        co_return BodyRead{false};
      }
      if (body_buffered()) {
        const size_t n = take_h2_body_in(st_, buf, cap);
        // The stream's window reopens as the server takes the bytes.
        nghttp2_session_consume_stream(s_.ng_, st_.id, n);
        s_.write_signal_.notify();
        co_return BodyRead{true, n, st_.end_stream_in && st_.in.empty()};
      }
      if (st_.end_stream_in) co_return BodyRead{true, 0, true};
      const bool woken = co_await st_.sig.wait_for(s_.cfg_.timeouts.client);
      if (!woken) {
        co_await answer(GatewayError::kBodyTimeout, {}, {});
        co_return BodyRead{false};
      }
    }
  }

  // The head (and the whole body, when it came with it) is usually in
  // frames at once (Http2Session::pack): then no coroutine of its own.
  bool send_head_now(Response& res, const ResponseFraming& framing, const char* data, size_t n,
                     bool last, bool& sent) override {
    if (gone() || !submit_head(res, framing, data, n, last)) {
      sent = false;
      return true;
    }
    sent = !gone();
    return !sent || !pending();  // else send_head() waits for the rest
  }

  awaitable<bool> send_head(Response& res, const ResponseFraming& framing, const char* data,
                            size_t n, bool last) override {
    // (Submitted already when send_head_now() began.)
    if (!st_.submitted && (gone() || !submit_head(res, framing, data, n, last))) co_return false;
    auto outcome = co_await drained();
    co_return outcome;
  }

  awaitable<bool> send_body(const char* data, size_t n, bool last) override {
    if (gone()) co_return false;
    st_.out = data;
    st_.out_len = n;
    st_.out_last = last;
    if (st_.deferred) {
      st_.deferred = false;
      nghttp2_session_resume_data(s_.ng_, st_.id);
    }
    s_.write_signal_.notify();
    pack_now();
    auto outcome = co_await drained();
    co_return outcome;
  }

  void abort() override { s_.reset(st_, NGHTTP2_INTERNAL_ERROR); }

  awaitable<void> answer(GatewayError e, std::string_view detail,
                         std::string_view extra_headers) override {
    st_.x.answered(e, 0);
    const unsigned status = info(e).status;
    const std::string_view reason = detail.empty() ? std::string_view(info(e).text) : detail;
    if (!gone() && !st_.submitted) {
      st_.answer_body.assign(reason);
      st_.answer_body += '\n';
      st_.head.start_answer(status, st_.answer_body.size(), extra_headers);
      if (submit(false, st_.answer_body.data(), st_.answer_body.size(), true)) co_await drained();
    }
    finish_exchange(s_.conn_, st_.x);
  }

  bool client_gone() const override { return gone(); }

 private:
  bool gone() const { return s_.dead_ || st_.reset_sent || (st_.closed && !st_.eof_sent); }

  // submit() with `res` as the head (the Forwarder removed the
  // connection-specific fields).
  bool submit_head(Response& res, const ResponseFraming& framing, const char* data, size_t n,
                   bool last) {
    st_.head.start(res.result_int());
    for (const auto& f : res) st_.head.add(f.name_string(), f.value(), f.name());
    return submit(framing.no_body || (last && n == 0), data, n, last);
  }

  // Submits the head in st_.head (nghttp2 points into it until the HEADERS
  // frame went out or the stream closed) with the first body bytes, and
  // makes what frames it can at once; drained() waits for the rest. False
  // when nghttp2 refused it.
  bool submit(bool no_data, const char* data, size_t n, bool last) {
    st_.submitted = true;
    st_.out = no_data ? nullptr : data;
    st_.out_len = no_data ? 0 : n;
    st_.out_last = no_data || last;
    nghttp2_data_provider provider;
    provider.source.ptr = &st_;
    provider.read_callback = &Session::read_out;
    const int rv = nghttp2_submit_response(s_.ng_, st_.id, st_.head.nva(), st_.head.size(),
                                           no_data ? nullptr : &provider);
    s_.write_signal_.notify();
    if (rv != 0) return false;
    pack_now();
    // Its text back to the cache at once, warm for the next stream's head.
    if (st_.head_out) st_.head.release();
    return true;
  }

  // The stream's frames made now (Http2Session::pack). What that notifies
  // this stream of is moot: drained() checks the state itself.
  void pack_now() {
    s_.pack();
    st_.sig.clear();
  }

  // Offered bytes not yet in frames, or the last ones not yet out.
  bool pending() const { return st_.out_len > 0 || (st_.out_last && !st_.eof_sent); }

  // Waits until the offered bytes are in frames (the caller's buffer is
  // free again) and, for the last ones, until they went out. A client that
  // doesn't open its window for timeouts.client loses the stream.
  awaitable<bool> drained() {
    while (!gone() && pending()) {
      const bool woken = co_await st_.sig.wait_for(s_.cfg_.timeouts.client);
      if (!woken) s_.reset(st_, NGHTTP2_CANCEL);
    }
    co_return !gone();
  }

  Session& s_;
  H2Stream& st_;
};

}  // namespace sag::session
