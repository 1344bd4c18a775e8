#include "session/forward/http1_server_connection.h"

#include <utility>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include "config/base/asio_prelude.h"
#include "config/base/coarse_clock.h"
#include "config/base/socket_readiness.h"
#include "session/client_port.h"
#include "session/deadline.h"
#include "session/head_writer.h"
#include "session/write_now.h"

namespace sag::session {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

namespace {

using base::kTuple;

// The server sent something that isn't valid HTTP, as opposed to a
// connection that closed or reset (end_of_stream and partial_message are
// Beast's words for those).
bool invalid_http(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_version).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_more && ec != http::error::need_buffer;
}

}  // namespace

Http1ServerConnection::Http1ServerConnection(WorkerContext& worker, const BackendRuntime& backend,
                                             Deadline& deadline)
    : worker_(worker),
      backend_(backend),
      deadline_(deadline) {}

Http1ServerConnection::~Http1ServerConnection() {
  if (socket_) deadline_.forget(socket_.get());
  close();
  if (in_buf_) worker_.buffers.give_back(std::move(in_buf_));
}

void Http1ServerConnection::take_input() {
  if (in_buf_) return;
  in_buf_ = worker_.buffers.take();
  in_.reset(in_buf_.get(), BufferPool::kSize);
}

void Http1ServerConnection::drop_input_if_done() {
  if (!in_buf_ || !got_head_ || !reader_.done() || in_.size() > 0) return;
  in_.reset(nullptr, 0);
  worker_.buffers.give_back(std::move(in_buf_));
}

ServerConnection::Status Http1ServerConnection::fail(const char* what,
                                                     const boost::system::error_code& ec,
                                                     bool reading) {
  failure_ = Failure{what, ec, reading && deadline_.fired(), invalid_http(ec)};
  return Status::kServerFailed;
}

void Http1ServerConnection::begin(uint32_t index) {
  // A head given up on halfway may have left fields referring to the input
  // (a complete one owns its bytes).
  if (reading_head_ && !got_head_) res_ = Response{};
  close();
  index_ = index;
  reused_ = false;
  reading_head_ = false;
  got_head_ = false;
  prefetched_ = 0;
  head_sent_ = head_size_ = 0;
  failure_ = {};
  in_.clear();
  reader_ = ResponseReader{};
}

bool Http1ServerConnection::reuse(uint32_t index) {
  begin(index);
  // Rounded up: a connection idle past idle_timeout by less than a tick of
  // the coarse clock must not pass (the server may close it just then).
  auto pooled = backend_.pool->take(index, base::coarse_steady_now() + base::coarse_resolution());
  if (!pooled) return false;
  if (socket_) deadline_.forget(socket_.get());  // (the deadline may name the one replaced)
  socket_ = std::move(pooled);
  reused_ = true;
  return true;
}

asio::awaitable<ServerConnection::Status> Http1ServerConnection::connect(uint32_t index) {
  begin(index);
  deadline_.arm_after(backend_.backend->config().connect_timeout, &sock());
  auto [ec] = co_await sock().async_connect(backend_.endpoints[index], kTuple);
  if (ec) {
    close();
    co_return fail("connect failed", ec, false);
  }
  sock().set_option(tcp::no_delay(true), ec);
  co_return Status::kOk;
}

bool Http1ServerConnection::send_request_now(Request& req, ClientPort& port, char* buf,
                                             size_t cap, Status& st) {
  head_sent_ = head_size_ = 0;
  if (port.has_body() || req.chunked()) return false;
  auto& body = req.body();
  body.data = nullptr;
  body.size = 0;
  body.more = false;
  // No body: the head written flat into the (still unused) body buffer,
  // one write, no serializer.
  const size_t n = write_head(req, buf, cap);
  if (n == 0) return false;  // too large for buf: the serializer's
  deadline_.arm_after(backend_.backend->config().server_timeout, &sock());
  boost::system::error_code ec;
  const size_t wn = write_now(sock(), asio::buffer(buf, n), ec);
  if (ec && ec != asio::error::would_block) {
    st = fail("request not accepted", ec, false);
    return true;
  }
  if (wn == n) {
    st = Status::kOk;
    return true;
  }
  head_sent_ = wn;
  head_size_ = n;
  return false;
}

asio::awaitable<ServerConnection::Status> Http1ServerConnection::send_request(
    Request& req, ClientPort& port, char* buf, size_t cap) {
  const auto timeout = backend_.backend->config().server_timeout;
  if (head_size_ != 0) {  // the rest of a head send_request_now() began
    const size_t from = std::exchange(head_sent_, 0), to = std::exchange(head_size_, 0);
    auto [ec, n] = co_await asio::async_write(sock(), asio::buffer(buf + from, to - from), kTuple);
    co_return ec ? fail("request not accepted", ec, false) : Status::kOk;
  }
  auto& body = req.body();
  body.data = nullptr;
  body.size = 0;
  body.more = port.has_body();
  deadline_.arm_after(timeout, &sock());
  http::request_serializer<http::buffer_body, Fields> sr{req};
  if (!body.more) {
    auto [ec, n] = co_await http::async_write(sock(), sr, kTuple);
    co_return ec ? fail("request not accepted", ec, false) : Status::kOk;
  }
  // As for responses: a head whose body bytes are already here goes out
  // with them in one write.
  if (!port.body_buffered()) {
    auto [ec, n] = co_await http::async_write_header(sock(), sr, kTuple);
    if (ec) co_return fail("request not accepted", ec, false);
  }
  for (;;) {
    const BodyRead r = co_await port.read_body(buf, cap);
    if (!r.ok) co_return Status::kClientFailed;
    if (r.size == 0 && !r.last) continue;
    body.data = r.size ? buf : nullptr;
    body.size = r.size;
    body.more = !r.last;
    deadline_.arm_after(timeout, &sock());
    auto [ec, n] = co_await http::async_write(sock(), sr, kTuple);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return fail("request not accepted", ec, false);
    if (r.last) break;
  }
  if (!sr.is_done()) {
    body.data = nullptr;
    body.size = 0;
    body.more = false;
    auto [ec, n] = co_await http::async_write(sock(), sr, kTuple);
    if (ec && ec != http::error::need_buffer) co_return fail("request not accepted", ec, false);
  }
  co_return Status::kOk;
}

bool Http1ServerConnection::read_response_head_now(http::verb method,
                                                   const boost::system::error_code& waited,
                                                   Status& st) {
  if (!reading_head_) {
    reading_head_ = true;
    deadline_.arm_after(backend_.backend->config().server_timeout, &sock());
  }
  boost::system::error_code ec = waited;
  while (!ec) {  // interim 1xx responses are skipped (100 Continue was ours to send)
    if (in_.size() > 0) {
      const size_t used = reader_.parse_head(input_view(), method == http::verb::head, res_, ec);
      if (ec) {
        st = fail("invalid response head", ec, true);
        return true;
      }
      if (used > 0) {
        in_.consume(used);
        const unsigned s = res_.result_int();
        if (s >= 200 || s == 101) {
          got_head_ = true;
          drop_input_if_done();  // a response without a body (204, 304, HEAD, length 0)
          st = Status::kOk;
          return true;
        }
        continue;
      }
      if (in_.size() == in_.max_size()) {
        st = fail("invalid response head", http::error::header_limit, true);
        return true;
      }
    }
    // The answer is never there yet right after the request went out: the
    // wait comes first, with no system call (socket_readiness.h), and the
    // buffer is taken after it.
    if (!base::maybe_readable(sock())) return false;
    take_input();
    size_t n = 0;
    if (!base::receive_ready(sock(), in_.prepare(in_.max_size() - in_.size()), ec, n)) return false;
    if (!ec) in_.commit(n);
  }
  if (ec == asio::error::eof)
    ec = in_.size() > 0 ? http::error::partial_message : http::error::end_of_stream;
  st = fail(invalid_http(ec) ? "invalid response head" : "no response", ec, true);
  return true;
}

asio::awaitable<std::tuple<boost::system::error_code>> Http1ServerConnection::wait_response() {
  return base::async_wait_ready(sock(), tcp::socket::wait_read, kTuple);
}

bool Http1ServerConnection::prefetchable(size_t cap) const {
  return got_head_ && !reader_.done() && reader_.framing() == ResponseReader::Framing::kLength &&
         *reader_.content_length() <= cap;
}

bool Http1ServerConnection::prefetch_buffered(char* buf, size_t cap) {
  prefetched_ = 0;
  if (in_.size() > 0 && !reader_.done()) {
    // A body with a length (prefetchable()): decoding is a copy, it can't fail.
    boost::system::error_code ec;
    in_.consume(reader_.decode(input_view(), buf, cap, prefetched_, ec));
  }
  drop_input_if_done();
  return reader_.done();
}

asio::awaitable<ServerConnection::Status> Http1ServerConnection::prefetch_body(char* buf,
                                                                               size_t cap) {
  while (!reader_.done()) {
    size_t got = 0;
    const Status s = co_await read_body(buf + prefetched_, cap - prefetched_, got);
    if (s != Status::kOk) co_return s;
    prefetched_ += got;
  }
  drop_input_if_done();
  co_return Status::kOk;
}

asio::awaitable<ServerConnection::Status> Http1ServerConnection::read_body(char* buf, size_t cap,
                                                                           size_t& got) {
  got = 0;
  if (reader_.done()) co_return Status::kOk;
  boost::system::error_code ec;
  if (in_.size() > 0) {
    in_.consume(reader_.decode(input_view(), buf, cap, got, ec));
    if (ec) co_return fail("invalid response body", ec, true);
    // Chunk framing alone used up what was buffered: read on.
    if (got > 0 || reader_.done()) co_return Status::kOk;
  }
  deadline_.arm_after(backend_.backend->config().server_timeout, &sock());
  // A body with a length (or up to the close) is read straight into the
  // relay buffer, never past its end; chunked bytes go through in_.
  const size_t direct = reader_.direct_limit(cap);
  auto [rec, n] = co_await base::receive_some(
      sock(), direct > 0 ? asio::buffer(buf, direct) : in_.prepare(in_.max_size() - in_.size()));
  if (rec == asio::error::eof) {
    reader_.end_of_input(ec);
    if (ec) co_return fail("response cut short", ec, true);
    co_return Status::kOk;
  }
  if (rec) co_return fail("response cut short", rec, true);
  if (direct > 0) {
    reader_.consumed_direct(n);
    got = n;
    co_return Status::kOk;
  }
  in_.commit(n);
  in_.consume(reader_.decode(input_view(), buf, cap, got, ec));
  if (ec) co_return fail("invalid response body", ec, true);
  co_return Status::kOk;
}

void Http1ServerConnection::release(bool reusable) {
  // The reader's keep-alive, not the head's: it knows the Connection field
  // as the server sent it (the head is rewritten for the client by now) and
  // that a close-delimited body ends the connection.
  if (reusable && socket_ && socket_->is_open() && got_head_ && reader_.done() &&
      reader_.keep_alive() && in_.size() == 0 && !worker_.stopping) {
    deadline_.forget(socket_.get());
    backend_.pool->give_back(index_, std::move(socket_), base::coarse_steady_now());
    return;
  }
  close();
}

void Http1ServerConnection::close() {
  if (!socket_ || !socket_->is_open()) return;
  boost::system::error_code ignored;
  socket_->close(ignored);
}

}  // namespace sag::session
