// Fuzzes the HTTP/2 session (session/http2_session.cc) in process, over a
// real TCP connection on 127.0.0.1 inside one io_context: the client end
// sends the preface, an empty SETTINGS frame, then the input's frames; the
// server end runs serve_http2 (the plain-socket instantiation of the same
// session TLS connections use) with a worker context as gateway/worker.cc
// builds it; requests go through the Forwarder to a tiny HTTP/1.1 server on
// the same io_context.
//
// Input: byte 0 chooses how the run goes, the rest is raw HTTP/2 frames
// (or, when it starts with "PRI", the client's preface and then frames).
//   bits 0-1  how the frames are written: all at once, one frame per write,
//             5-byte or 61-byte pieces (the session reads between writes)
//   bits 2-4  what the server answers (see Reply)
//   bit 5     the client ends with a half-close (FIN) rather than a reset
//   bit 6     a graceful stop (WorkerContext::begin_stop) halfway through
//             the writes
//   bit 7     the client stops reading (small buffers): a client that
//             doesn't read what its frames make the gateway send
//
// Each input: write a piece, run every ready handler (io_context::poll),
// read and discard what the gateway sent, until nothing moves (everything
// is on loopback in this process, so no ready handler and no byte moving
// means only a timer could wake the session, and its timers are tens of
// seconds away) or a step/time bound passes. Then the client goes away,
// and the session must end within a bound (else: abort, a hang). Then the
// server's connections and the pool are closed and the io_context runs out
// of work; everything is destroyed before the next input (LeakSanitizer).
// The config, backends, store, stats and access log are built once and
// shared by every input, as a gateway's workers share them; the
// io_context, worker context (balancer, pool) and sockets are per input.
//
// Oracles: no crash or sanitizer report; no exception escapes serve_http2;
// the session ends once the client is gone; the first frame the gateway
// sends is its SETTINGS, advertising the configured stream limit.
//
// SAG_H2_FUZZ_VERBOSE=1 sends the access log to stdout and prints a line
// per input to stderr (frames received by type, requests the server saw,
// how the run ended): to check what a seed exercises.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "affinity/model/backend.h"
#include "affinity/clock.h"
#include "affinity/store/memory_affinity_store.h"
#include "config/base/asio_prelude.h"
#include "config/config_loader.h"
#include "session/access_log.h"
#include "session/client_connection.h"
#include "session/gateway_stats.h"
#include "session/http2/http2_session.h"
#include "session/router.h"
#include "session/upstream_pool.h"
#include "session/worker_context.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using sag::session::ClientConnection;
using tcp = asio::ip::tcp;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

using sag::base::kTuple;

// Small limits so that every refusal is reachable with inputs of a few KiB:
// a ninth concurrent stream (REFUSED_STREAM), a 4 KiB header list (431), a
// 2 KiB body (413). The server's address is a placeholder: the harness
// points the backend at its own server (BackendRuntime::endpoints).
constexpr uint32_t kStreamLimit = 8;
constexpr std::string_view kConfig = R"(
listeners:
  - {name: h2, bind: "127.0.0.1:0", backend: app}
backends:
  - name: app
    servers:
      - {name: s1, address: "127.0.0.1:9"}
    health_check: {type: none}
    retries: 1
limits:
  max_header_bytes: 4KiB
  max_headers: 32
  max_body: 2KiB
  h2_max_concurrent_streams: 8
affinity_store: {capacity: 1024}
access_log: {path: /dev/null}
)";

bool verbose() {
  static const bool v = std::getenv("SAG_H2_FUZZ_VERBOSE") != nullptr;
  return v;
}

// Built once: what every worker shares in the gateway (gateway/gateway.cc).
// Only counters change across inputs.
struct Shared {
  Shared() {
    std::string yaml(kConfig);
    if (verbose()) yaml.replace(yaml.find("/dev/null"), 9, "\"-\"");
    auto r = sag::config::ConfigLoader::load_string(yaml, "h2_fuzz.yaml", "/nonexistent");
    if (!r.config) {
      for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
      std::abort();
    }
    config = r.config;
    if (config->limits.h2_max_concurrent_streams != kStreamLimit) {
      std::fprintf(stderr, "h2_fuzz: kStreamLimit differs from the config\n");
      std::abort();
    }
    auto g = std::make_shared<sag::session::Generation>();
    g->number = 1;
    g->config = config;
    g->backends = std::make_shared<sag::affinity::BackendSet>(*config);
    store = std::make_unique<sag::affinity::MemoryAffinityStore>(config->affinity_store.capacity);
    std::string error;
    g->access_log = sag::session::AccessLog::open(config->access_log, error);
    if (!g->access_log) {
      std::fprintf(stderr, "access log: %s\n", error.c_str());
      std::abort();
    }
    stats = std::make_unique<sag::session::GatewayStats>(*config);
    g->listeners.resize(1);
    g->listeners[0].config = &config->listeners[0];
    g->listeners[0].router = std::make_unique<sag::session::Router>(config->listeners[0], *config);
    g->listeners[0].id = 0;
    gen = std::move(g);
  }

  std::shared_ptr<const sag::config::GatewayConfig> config;
  std::shared_ptr<const sag::session::Generation> gen;
  std::unique_ptr<sag::affinity::MemoryAffinityStore> store;
  std::unique_ptr<sag::session::GatewayStats> stats;
  sag::affinity::SystemClock clock;
  std::atomic<int64_t> connections{0};
};

Shared& shared() {
  static Shared s;
  return s;
}

// What the harness's HTTP/1.1 server answers to every request.
enum class Reply : uint8_t {
  kSmall,           // 200, Content-Length, keep-alive
  kChunked,         // 200 chunked in two chunks, with a Set-Cookie
  kLarge,           // 200 with 100 KiB: more than the client's initial window
  kInterim,         // 100 Continue, then 204
  kCloseDelimited,  // 200 without length, ended by the server closing
  kGarbage,         // an invalid status line: 502 (a GET is retried first,
                    // and with the only server excluded gets 503)
  kHangUp,          // closes without answering: as kGarbage
  kTruncated,       // a head announcing 40000 bytes, 20000 sent, then silence:
                    // the head and a part of the body reach the client
};

std::string_view canned(Reply r) {
  static const std::string truncated =
      "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n" + std::string(20000, 'y');
  static const std::string large = [] {
    std::string body(100 * 1024, 'x');
    return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  switch (r) {
    case Reply::kSmall:
      return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
    case Reply::kChunked:
      return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: JSESSIONID=abc; Path=/\r\n"
             "X-Custom: v\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    case Reply::kLarge:
      return large;
    case Reply::kInterim:
      return "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n";
    case Reply::kCloseDelimited:
      return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
    case Reply::kGarbage:
      return "HTTP/1.1 2x0 Nope\r\n\r\n";
    case Reply::kHangUp:
      return {};
    case Reply::kTruncated:
      return truncated;
  }
  return {};
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "h2_fuzz: %s\n", what);
  std::abort();
}

// One input's world. Declaration order is destruction order reversed: the
// io_context goes last, after every socket and timer on it.
struct Run {
  explicit Run(Shared& sh)
      : ctx(io, *sh.stats, sh.clock, sh.connections),
        backend_acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        client(io),
        server(io) {
    // The worker's view, as gateway/worker.cc builds it; every server's
    // endpoint is the harness's own server.
    auto wg = sag::session::WorkerGeneration::build(sh.gen, 0, sh.store.get(), nullptr);
    for (auto& rt : wg->backends)
      for (auto& ep : rt.endpoints) ep = backend_acceptor.local_endpoint();
    ctx.current = std::move(wg);
  }

  asio::io_context io{1};
  sag::session::WorkerContext ctx;
  tcp::acceptor backend_acceptor;
  std::set<tcp::socket*> backend_conns;  // open connections of the harness's server
  tcp::socket client;                    // the fuzzed client's end (synchronous, non-blocking)
  tcp::socket server;                    // the gateway's end
  Reply reply = Reply::kSmall;
  bool session_done = false;
  size_t requests = 0;  // requests the harness's server read
};

void close_now(tcp::socket& s) {
  boost::system::error_code ignored;
  // A reset: no TIME_WAIT left behind by thousands of runs.
  s.set_option(asio::socket_base::linger(true, 0), ignored);
  s.close(ignored);
}

awaitable<void> backend_connection(tcp::socket s, Run& run) {
  run.backend_conns.insert(&s);
  boost::system::error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);
  beast::flat_buffer buf;
  for (;;) {
    http::request_parser<http::string_body> p;
    p.header_limit(64 * 1024);
    p.body_limit(1024 * 1024);
    auto [ec, n] = co_await http::async_read(s, buf, p, kTuple);
    if (ec) break;
    ++run.requests;
    const std::string_view answer = canned(run.reply);
    if (answer.empty()) break;
    auto [wec, wn] = co_await asio::async_write(s, asio::buffer(answer), kTuple);
    if (wec || run.reply == Reply::kCloseDelimited) break;
  }
  run.backend_conns.erase(&s);
  s.shutdown(tcp::socket::shutdown_send, ignored);
  s.close(ignored);
}

awaitable<void> backend_accept(Run& run) {
  for (;;) {
    auto [ec, s] = co_await run.backend_acceptor.async_accept(kTuple);
    if (ec) co_return;
    asio::co_spawn(run.io, backend_connection(std::move(s), run), [](std::exception_ptr e) {
      if (e) fail("exception in the harness's server");
    });
  }
}

// As run_client_connection does for a plain listener, with HTTP/2 after
// prior knowledge instead of HTTP/1.1.
awaitable<void> serve(Run& run, ClientConnection& conn) {
  conn.deadline.arm(conn.accepted + conn.gen->config->timeouts.http_request, &conn.lowest);
  co_await sag::session::serve_http2(run.server, conn);
  // A half-close, so that the client still reads a GOAWAY; the socket is
  // reset at the end of the run.
  boost::system::error_code ignored;
  run.server.shutdown(tcp::socket::shutdown_send, ignored);
}

void describe_client(ClientConnection& conn, const tcp::endpoint& remote) {
  conn.client_ip = remote.address().to_string();
  conn.client.ip_text = conn.client_ip;
  conn.client.ip.v6 = false;
  const auto b = remote.address().to_v4().to_bytes();
  std::copy(b.begin(), b.end(), conn.client.ip.bytes.begin());
  conn.client.port = remote.port();
  conn.client.listener_port = conn.listener->port;
  conn.accepted = Clock::now();
  conn.accepted_wall = std::chrono::system_clock::now();
}

// The pieces the input's frames are written in.
std::vector<std::string_view> split(std::string_view in, unsigned mode) {
  std::vector<std::string_view> out;
  if (in.empty()) return out;
  if (mode == 0) {
    out.push_back(in);
    return out;
  }
  if (mode == 1) {  // one frame a write (a short last one as it is)
    while (!in.empty()) {
      size_t n = in.size();
      if (in.size() >= 9) {
        const size_t len = (size_t{uint8_t(in[0])} << 16) | (size_t{uint8_t(in[1])} << 8) |
                           uint8_t(in[2]);
        n = std::min(in.size(), 9 + len);
      }
      out.push_back(in.substr(0, n));
      in.remove_prefix(n);
    }
    return out;
  }
  const size_t piece = mode == 2 ? 5 : 61;
  while (!in.empty()) {
    const size_t n = std::min(piece, in.size());
    out.push_back(in.substr(0, n));
    in.remove_prefix(n);
  }
  return out;
}

// Bounds of one phase: handlers run, wall time.
constexpr size_t kMaxSteps = 20000;
constexpr auto kMaxPhase = std::chrono::milliseconds(300);
// After the client went away the session must end within this.
constexpr auto kMaxEnd = std::chrono::seconds(5);

struct Client {
  explicit Client(Run& r) : run(r) {}

  Run& run;
  bool reading = true;
  bool eof = false;
  bool write_failed = false;
  std::string first_frame;  // the gateway's first frame, for the SETTINGS check
  // Verbose: frames received by type, and the partial frame being read.
  size_t frames[11] = {};
  std::string partial;

  void count(const char* p, size_t n) {
    partial.append(p, n);
    size_t at = 0;
    while (partial.size() - at >= 9) {
      const size_t len = (size_t{uint8_t(partial[at])} << 16) |
                         (size_t{uint8_t(partial[at + 1])} << 8) | uint8_t(partial[at + 2]);
      if (partial.size() - at < 9 + len) break;
      ++frames[std::min<size_t>(uint8_t(partial[at + 3]), 10)];
      at += 9 + len;
    }
    partial.erase(0, at);
  }

  // Reads and discards what is there; true when something moved.
  bool drain() {
    if (!reading || eof) return false;
    bool moved = false;
    char buf[16 * 1024];
    for (;;) {
      boost::system::error_code ec;
      const size_t n = run.client.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) break;
      if (ec) {
        eof = true;
        moved = true;
        break;
      }
      if (first_frame.size() < 9 + 256) first_frame.append(buf, std::min(n, 9 + 256 - first_frame.size()));
      if (verbose()) count(buf, n);
      moved = true;
    }
    return moved;
  }

  // Writes what it can of `data` (advanced); true when something moved.
  bool write(std::string_view& data) {
    if (write_failed || data.empty()) return false;
    boost::system::error_code ec;
    const size_t n = run.client.write_some(asio::buffer(data.data(), data.size()), ec);
    if (ec == asio::error::would_block) return false;
    if (ec) {
      write_failed = true;
      return true;
    }
    data.remove_prefix(n);
    return n > 0;
  }

  // Runs until nothing moves, a bound passes or `done` says so, writing
  // `pieces` in order (each whole before the next, with the session's
  // handlers run in between).
  // How the last pump() ended: 'd' the session ended, 'q' nothing moved,
  // 's' the step bound, 't' the time bound.
  char ended = '-';
  size_t total_steps = 0;

  template <class Done>
  void pump(std::vector<std::string_view> pieces, Done done) {
    size_t at = 0;
    size_t steps = 0;
    const auto until = Clock::now() + kMaxPhase;
    ended = 's';
    while (steps < kMaxSteps) {
      if (done()) {
        drain();  // the last frames (GOAWAY), up to the gateway's FIN
        ended = 'd';
        break;
      }
      bool moved = false;
      if (at < pieces.size()) {
        moved |= write(pieces[at]);
        if (pieces[at].empty() || write_failed) ++at;
      }
      moved |= drain();
      const size_t n = run.io.poll();
      steps += n;
      total_steps += n;
      moved |= n > 0;
      // Nothing moved: the session waits for a timer (or for the client to
      // read, which it won't); a write that would block stays blocked, as
      // only a handler of the gateway's could make room.
      if (!moved) {
        ended = 'q';
        break;
      }
      if (Clock::now() > until) {
        ended = 't';
        break;
      }
    }
  }
};

void check_settings(const std::string& f) {
  if (f.size() < 9) return;  // the gateway sent nothing (or the client didn't read)
  if (f[3] != 0x4 || f[4] != 0 || f[5] != 0 || f[6] != 0 || f[7] != 0 || f[8] != 0)
    fail("the first frame sent is not the server's SETTINGS");
  const size_t len = (size_t{uint8_t(f[0])} << 16) | (size_t{uint8_t(f[1])} << 8) | uint8_t(f[2]);
  for (size_t at = 9; at + 6 <= std::min(f.size(), 9 + len); at += 6) {
    const unsigned id = (unsigned{uint8_t(f[at])} << 8) | uint8_t(f[at + 1]);
    const uint32_t v = (uint32_t{uint8_t(f[at + 2])} << 24) | (uint32_t{uint8_t(f[at + 3])} << 16) |
                       (uint32_t{uint8_t(f[at + 4])} << 8) | uint8_t(f[at + 5]);
    if (id == 0x3 && v != kStreamLimit) fail("SETTINGS_MAX_CONCURRENT_STREAMS is not the configured limit");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  const std::string_view frames(reinterpret_cast<const char*>(data + 1), size - 1);
  Shared& sh = shared();
  {
    Run run(sh);
    run.reply = static_cast<Reply>((control >> 2) & 7);
    const bool half_close = control & 0x20;
    const bool graceful_stop = control & 0x40;
    const bool stop_reading = control & 0x80;

    // The connection: an acceptor on port 0, connect, accept.
    {
      tcp::acceptor front(run.io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
      // libFuzzer's timer signals may interrupt these blocking calls (the
      // connection goes on in the kernel): wait again rather than throw.
      boost::system::error_code cec;
      run.client.connect(front.local_endpoint(), cec);
      while (cec == asio::error::interrupted) run.client.wait(tcp::socket::wait_write, cec);
      if (!cec) run.client.remote_endpoint(cec);  // connected, not failed
      if (cec) fail(("connect: " + cec.message()).c_str());
      do {
        front.accept(run.server, cec);
      } while (cec == asio::error::interrupted);
      if (cec) fail(("accept: " + cec.message()).c_str());
    }
    boost::system::error_code ec;
    run.client.non_blocking(true, ec);
    // Without Nagle every write is delivered at once (loopback delivers in
    // the sender's system call), so a poll() that runs nothing means that
    // nothing is on its way.
    run.client.set_option(tcp::no_delay(true), ec);
    run.server.set_option(tcp::no_delay(true), ec);
    if (stop_reading) {
      run.client.set_option(asio::socket_base::receive_buffer_size(4096), ec);
      run.server.set_option(asio::socket_base::send_buffer_size(4096), ec);
    }
    const tcp::endpoint remote = run.server.remote_endpoint(ec);
    if (ec) fail("no remote endpoint");

    asio::co_spawn(run.io, backend_accept(run), [](std::exception_ptr e) {
      if (e) fail("exception in the harness's acceptor");
    });
    {
      ClientConnection conn(run.ctx, run.ctx.current, sh.gen->listeners[0], run.server);
      describe_client(conn, remote);
      asio::co_spawn(run.io, serve(run, conn), [&run](std::exception_ptr e) {
        run.session_done = true;
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            std::fprintf(stderr, "h2_fuzz: exception out of serve_http2: %s\n", ex.what());
          }
          std::abort();
        }
      });

      Client client(run);
      static constexpr char kPreface[] =
          "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
          "\x00\x00\x00\x04\x00\x00\x00\x00\x00";  // an empty SETTINGS frame
      std::string_view preface(kPreface, sizeof kPreface - 1);
      std::string_view rest = frames;
      // Input that starts with "PRI" (as a frame header: a 5 MB frame, of
      // no other use) brings its own preface: the first 24 bytes, whatever
      // they are.
      if (rest.starts_with("PRI")) {
        preface = rest.substr(0, 24);
        rest.remove_prefix(preface.size());
      }
      std::vector<std::string_view> pieces = split(rest, control & 3);
      auto session_done = [&run] { return run.session_done; };
      // Reads the gateway's first bytes (its SETTINGS) even when the client
      // is then to stop reading.
      client.pump({preface}, session_done);
      client.reading = !stop_reading;
      // A graceful stop comes halfway through the pieces (after the only
      // one): streams in flight finish, later ones are refused.
      const size_t stop_at = graceful_stop ? (pieces.size() + 1) / 2 : pieces.size();
      client.pump({pieces.begin(), pieces.begin() + stop_at}, session_done);
      const char ended = client.ended;
      if (graceful_stop && !run.session_done) {
        // As Worker::begin_stop: idle connections' reads are cancelled,
        // busy ones end after their responses.
        run.ctx.begin_stop();
        for (auto& b : run.ctx.current->backends) b.pool->close_all();
        client.pump({pieces.begin() + stop_at, pieces.end()}, session_done);
      }

      // The client goes away.
      client.reading = true;
      if (half_close) {
        run.client.shutdown(tcp::socket::shutdown_send, ec);
      } else {
        close_now(run.client);
      }
      const auto until = Clock::now() + kMaxEnd;
      while (!run.session_done || (run.client.is_open() && !client.eof)) {
        if (run.client.is_open()) client.drain();
        if (run.io.poll() == 0) {
          if (Clock::now() > until) fail("the session did not end after the client went away");
          run.io.run_one_for(std::chrono::milliseconds(1));
        }
      }
      check_settings(client.first_frame);
      if (verbose()) {
        static const char* const kNames[] = {"DATA", "HEADERS", "PRIORITY", "RST_STREAM",
                                             "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
                                             "WINDOW_UPDATE", "CONTINUATION", "other"};
        std::string line = "h2_fuzz: " + std::to_string(size) + " bytes, control 0x";
        const char hex[] = "0123456789abcdef";
        line += hex[control >> 4];
        line += hex[control & 15];
        line += ", ended '";
        line += ended;
        line += "' after " + std::to_string(client.total_steps) + " steps; server saw " +
                std::to_string(run.requests) + " requests; received";
        for (size_t i = 0; i < 11; ++i)
          if (client.frames[i]) {
            // Appended piece by piece: g++ 12 warns falsely on `" " + string`.
            line += ' ';
            line += kNames[i];
            line += '=';
            line += std::to_string(client.frames[i]);
          }
        std::fprintf(stderr, "%s\n", line.c_str());
      }
      close_now(run.client);
      close_now(run.server);
      // ~ClientConnection here: the worker forgets the connection.
    }
    if (run.ctx.live_connections() != 0) fail("a connection is still registered with the worker");

    // The harness's server and the pool go; then nothing may be left to run.
    for (tcp::socket* s : std::vector<tcp::socket*>(run.backend_conns.begin(), run.backend_conns.end()))
      close_now(*s);
    run.backend_acceptor.close(ec);
    for (auto& b : run.ctx.current->backends) b.pool->close_all();
    run.io.run_for(kMaxEnd);
    if (!run.io.stopped()) fail("work left on the io_context after the session ended");
  }
  return 0;
}
