// ServerConnection over pooled HTTP/1.1 keep-alive connections (our
// ResponseReader; Beast's serializer for request bodies). The server's
// bytes land in a buffer leased from the worker's pool once they are there
// (an exchange waiting for its server holds none: with hundreds of HTTP/2
// streams in flight, one buffer each would be megabytes the kernel writes
// into cold), so a small response arrives in one read and nothing is
// allocated for it; a body with a length is read straight into the relay
// buffer.
//
// Thread: the connection's worker. Owns its socket: the destructor closes
// whatever release() didn't pool, and drops it from the deadline.
#pragma once

#include <optional>

#include "session/http_message.h"
#include "session/forward/response_reader.h"
#include "session/forward/server_connection.h"
#include "session/upstream_pool.h"
#include "session/worker_context.h"

namespace sag::session {

class Deadline;

class Http1ServerConnection final : public ServerConnection {
 public:
  // `deadline` bounds every wait (its watch() must be running); all
  // references outlive the connection.
  Http1ServerConnection(WorkerContext& worker, const BackendRuntime& backend, Deadline& deadline);
  ~Http1ServerConnection() override;
  Http1ServerConnection(const Http1ServerConnection&) = delete;
  Http1ServerConnection& operator=(const Http1ServerConnection&) = delete;

  bool reuse(uint32_t index) override;
  awaitable<Status> connect(uint32_t index) override;
  bool reused() const override { return reused_; }
  awaitable<Status> send_request(Request& req, ClientPort& port, char* buf, size_t cap) override;
  bool send_request_now(Request& req, ClientPort& port, char* buf, size_t cap,
                        Status& st) override;
  bool read_response_head_now(boost::beast::http::verb method,
                              const boost::system::error_code& waited, Status& st) override;
  awaitable<std::tuple<boost::system::error_code>> wait_response() override;
  bool prefetchable(size_t cap) const override;
  bool prefetch_buffered(char* buf, size_t cap) override;
  awaitable<Status> prefetch_body(char* buf, size_t cap) override;
  size_t prefetched() const override { return prefetched_; }
  awaitable<Status> read_body(char* buf, size_t cap, size_t& got) override;

  Response& response() override { return res_; }
  bool response_done() const override { return got_head_ && reader_.done(); }
  bool response_started() const override { return got_head_ || in_.size() > 0; }
  bool has_unread() const override { return in_.size() > 0; }
  const Failure& failure() const override { return failure_; }
  bool has_declared_length() const override {
    return got_head_ && reader_.content_length().has_value();
  }

  void release(bool reusable) override;
  void close() override;
  boost::asio::ip::tcp::socket& socket() override { return sock(); }
  boost::beast::flat_static_buffer_base& input() override { return in_; }

 private:
  // Starts a new attempt: what the previous one held is closed and reset.
  void begin(uint32_t index);
  // Leases the input buffer (if not leased yet: only while in_ is empty).
  void take_input();
  // Gives it back once the response was read whole and nothing is left in
  // it (the exchange may go on for long, sending the body to the client).
  void drop_input_if_done();
  // The socket, made (unopened) on first use when no pooled one was taken.
  boost::asio::ip::tcp::socket& sock() {
    if (!socket_) socket_ = base::make_pooled<boost::asio::ip::tcp::socket>(worker_.io);
    return *socket_;
  }
  Status fail(const char* what, const boost::system::error_code& ec, bool reading);
  std::string_view input_view() const {
    return {static_cast<const char*>(in_.data().data()), in_.size()};
  }

  WorkerContext& worker_;
  const BackendRuntime& backend_;
  Deadline& deadline_;
  // Null until an attempt needs one: a pooled socket comes in as the
  // pool's pointer, where constructing one first would look its service up
  // in the io_context's registry (a mutex and a scan) on every request.
  UpstreamPool::SocketPtr socket_;
  // in_ over a buffer from worker_.buffers, or over nothing until
  // take_input(); given back on destruction.
  struct Input : boost::beast::flat_static_buffer_base {
    Input() : flat_static_buffer_base(nullptr, 0) {}
    using flat_static_buffer_base::reset;
  };
  std::unique_ptr<char[]> in_buf_;
  Input in_;
  ResponseReader reader_;
  Response res_;
  Failure failure_;
  uint32_t index_ = 0;
  size_t prefetched_ = 0;
  // A head send_request_now() wrote only part of: buf[head_sent_, head_size_)
  // is still to go (both 0 otherwise).
  size_t head_sent_ = 0;
  size_t head_size_ = 0;
  bool reused_ = false;
  bool reading_head_ = false;  // timeouts.server runs for the response head
  bool got_head_ = false;
};

}  // namespace sag::session
