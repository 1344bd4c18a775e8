#include "tls/tls_socket_stream.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "config/base/asio_prelude.h"
#include "tests/tls/tls_stream_fixture.h"
#include "tests/tls/tls_test_util.h"
#include "tls/server_tls_context.h"

namespace sag::tls {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using asio::awaitable;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using Client = asio::ssl::stream<tcp::socket>;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

using base::kTuple;

#if defined(__SANITIZE_ADDRESS__)
#define SAG_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SAG_TEST_SANITIZED 1
#endif
#endif

static_assert(beast::is_async_read_stream<TlsSocketStream>::value);
static_assert(beast::is_async_write_stream<TlsSocketStream>::value);
static_assert(beast::is_async_stream<TlsSocketStream>::value);

// Deterministic bytes (xorshift64*) for the transfers.
struct Pattern {
  uint64_t s;
  explicit Pattern(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  void fill(unsigned char* p, size_t n) {
    while (n >= 8) {
      s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
      const uint64_t v = s * 0x2545F4914F6CDD1Dull;
      std::memcpy(p, &v, 8);
      p += 8, n -= 8;
    }
    for (; n > 0; --n) *p++ = static_cast<unsigned char>(s >>= 1);
  }
  std::string bytes(size_t n) {
    std::string out(n, '\0');
    fill(reinterpret_cast<unsigned char*>(out.data()), n);
    return out;
  }
};

struct Sha256 {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Sha256() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx); }
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx, p, n); }
  std::string hex() {
    unsigned char md[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    std::string out;
    char b[3];
    for (unsigned i = 0; i < len; ++i) {
      std::snprintf(b, sizeof b, "%02x", md[i]);
      out += b;
    }
    return out;
  }
};

std::string client_alpn(Client& c) {
  const unsigned char* p = nullptr;
  unsigned n = 0;
  SSL_get0_alpn_selected(c.native_handle(), &p, &n);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

class TlsSocketStreamTest : public testing::TlsStreamFixture {
 protected:
  void SetUp() override {
    TlsStreamFixture::SetUp();
    set_client_alpn({"h2", "http/1.1"});
  }

  void set_client_alpn(const std::vector<std::string>& protos) {
    std::vector<unsigned char> wire;
    for (const auto& p : protos) {
      wire.push_back(static_cast<unsigned char>(p.size()));
      wire.insert(wire.end(), p.begin(), p.end());
    }
    SSL_CTX_set_alpn_protos(client_ctx_.native_handle(), wire.data(), static_cast<unsigned>(wire.size()));
  }

  struct Conn {
    std::unique_ptr<Client> client;
    std::unique_ptr<TlsSocketStream> server;
  };

  Conn connect(int client_max_version = TLS1_3_VERSION) {
    auto [c, s] = tcp_pair();
    Conn conn;
    conn.client = std::make_unique<Client>(std::move(c), client_ctx_);
    SSL_set_max_proto_version(conn.client->native_handle(), client_max_version);
    conn.server = std::make_unique<TlsSocketStream>(std::move(s), server_ctx_->asio_context());
    return conn;
  }

  // Runs both handshakes to completion.
  void handshake(Conn& conn) {
    error_code sec = asio::error::would_block, cec = asio::error::would_block;
    conn.server->async_handshake(asio::ssl::stream_base::server, [&](error_code ec) { sec = ec; });
    conn.client->async_handshake(asio::ssl::stream_base::client, [&](error_code ec) { cec = ec; });
    run();
    ASSERT_FALSE(sec) << sec.message();
    ASSERT_FALSE(cec) << cec.message();
  }
};

// Echoes until the peer's close_notify, then sends ours.
awaitable<error_code> echo(TlsSocketStream& s) {
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), kTuple);
    if (ec) {
      auto [sec] = co_await s.async_shutdown(kTuple);
      if (ec == asio::error::eof) {
        EXPECT_FALSE(sec) << sec.message();
      }
      co_return ec;
    }
    auto [wec, wn] = co_await asio::async_write(s, asio::buffer(buf, n), kTuple);
    if (wec) co_return wec;
  }
}

TEST_F(TlsSocketStreamTest, HandshakeAlpnEchoAndCloseNotifyFromClient) {
  for (const auto& offer : std::vector<std::vector<std::string>>{{"h2", "http/1.1"}, {"http/1.1"}}) {
    set_client_alpn(offer);
    Conn conn = connect();
    handshake(conn);
    EXPECT_EQ(conn.server->alpn(), offer[0]);
    // TLS 1.3: the server's SSL object is gone, its RecordStream goes on.
    EXPECT_TRUE(conn.server->on_record_stream());
    EXPECT_EQ(conn.server->native_handle(), nullptr);
    EXPECT_EQ(client_alpn(*conn.client), offer[0]);

    error_code server_end;
    spawn([&]() -> awaitable<void> { server_end = co_await echo(*conn.server); });
    spawn([&]() -> awaitable<void> {
      const std::string msg = "hello over " + offer[0];
      auto [wec, wn] = co_await asio::async_write(*conn.client, asio::buffer(msg), kTuple);
      EXPECT_FALSE(wec);
      std::string back(msg.size(), '\0');
      auto [rec, rn] = co_await asio::async_read(*conn.client, asio::buffer(back), kTuple);
      EXPECT_FALSE(rec);
      EXPECT_EQ(back, msg);
      // A TLS 1.3 KeyUpdate asking for ours: the server answers it on its
      // next write, and the echo goes on under the new keys.
      EXPECT_EQ(SSL_key_update(conn.client->native_handle(), SSL_KEY_UPDATE_REQUESTED), 1);
      for (int i = 0; i < 3; ++i) {
        auto [w2, n2] = co_await asio::async_write(*conn.client, asio::buffer(msg), kTuple);
        EXPECT_FALSE(w2);
        auto [r2, m2] = co_await asio::async_read(*conn.client, asio::buffer(back), kTuple);
        EXPECT_FALSE(r2) << r2.message();
        EXPECT_EQ(back, msg);
      }
      // asio's shutdown sends close_notify and waits for the server's.
      auto [sec] = co_await conn.client->async_shutdown(kTuple);
      EXPECT_FALSE(sec) << sec.message();
    });
    run();
    EXPECT_EQ(server_end, asio::error::eof) << server_end.message();
    EXPECT_TRUE(conn.server->close_notify_received());
    EXPECT_TRUE(conn.server->close_notify_sent());
  }
}

// How an idle HTTP/1.1 connection waits without a read buffer: wait for
// readability, then read what is there without another wait. Decrypted
// bytes OpenSSL still holds count as readable (the socket would never say
// so); the wait never completes inline; close_notify reads as eof; a
// cancelled wait ends with operation_aborted.
TEST_F(TlsSocketStreamTest, WaitReadableThenReadNow) {
  Conn conn = connect();
  handshake(conn);
  TlsSocketStream& srv = *conn.server;
  char buf[64];
  error_code ec;
  EXPECT_EQ(srv.read_some_now(buf, sizeof buf, ec), 0u);
  EXPECT_EQ(ec, asio::error::would_block);
  EXPECT_FALSE(srv.has_pending_plaintext());

  error_code wec = asio::error::would_block;
  srv.async_wait_readable([&](error_code e) { wec = e; });
  asio::write(*conn.client, asio::buffer("0123456789", 10));  // one record
  run();
  ASSERT_FALSE(wec) << wec.message();
  ASSERT_EQ(srv.read_some_now(buf, 4, ec), 4u);
  EXPECT_FALSE(ec);
  EXPECT_EQ(std::string(buf, 4), "0123");
  // Six decrypted bytes wait in OpenSSL, none on the socket.
  EXPECT_TRUE(srv.has_pending_plaintext());
  wec = asio::error::would_block;
  srv.async_wait_readable([&](error_code e) { wec = e; });
  EXPECT_EQ(wec, asio::error::would_block) << "completed inline";
  run();
  EXPECT_FALSE(wec);
  ASSERT_EQ(srv.read_some_now(buf, sizeof buf, ec), 6u);
  EXPECT_EQ(std::string(buf, 6), "456789");
  EXPECT_EQ(srv.read_some_now(buf, sizeof buf, ec), 0u);
  EXPECT_EQ(ec, asio::error::would_block);

  // A wait cancelled through the socket.
  wec = {};
  srv.async_wait_readable([&](error_code e) { wec = e; });
  asio::post(io_, [&] { srv.next_layer().cancel(); });
  run();
  EXPECT_EQ(wec, asio::error::operation_aborted);

  // The client's close_notify: readable, and the read says eof.
  error_code cec = asio::error::would_block;
  conn.client->async_shutdown([&](error_code e) { cec = e; });
  wec = asio::error::would_block;
  srv.async_wait_readable([&](error_code e) { wec = e; });
  io_.restart();
  io_.run_one_for(5s);
  while (wec == asio::error::would_block && io_.run_one_for(5s)) {
  }
  EXPECT_FALSE(wec) << wec.message();
  EXPECT_EQ(srv.read_some_now(buf, sizeof buf, ec), 0u);
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
  srv.next_layer().close();
  run();
}

// The request path's "write now, the rest asynchronously": writes the
// socket takes at once need no executor trip; once it is full,
// write_some_now says would_block (OpenSSL may hold a record encrypted and
// half-sent), and the same bytes written asynchronously arrive whole, in
// order and once.
TEST_F(TlsSocketStreamTest, WriteNowThenTheRestAsynchronously) {
  Conn conn = connect();
  handshake(conn);
  TlsSocketStream& srv = *conn.server;
  srv.next_layer().set_option(asio::socket_base::send_buffer_size(4096));
  Pattern p(3);
  const std::string data = p.bytes(8 * 1024 * 1024);
  size_t pos = 0;
  error_code ec;
  bool blocked = false;
  while (pos < data.size()) {
    // A head and a body, as a whole response goes out.
    const size_t head = std::min<size_t>(100, data.size() - pos);
    const std::array<asio::const_buffer, 2> out{
        asio::buffer(data.data() + pos, head),
        asio::buffer(data.data() + pos + head, std::min<size_t>(30000, data.size() - pos - head))};
    const size_t n = srv.write_some_now(out, ec);
    if (ec == asio::error::would_block) {
      EXPECT_EQ(n, 0u);
      blocked = true;
      break;
    }
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_GT(n, 0u);
    ASSERT_LE(n, 16u * 1024);
    pos += n;
  }
  ASSERT_TRUE(blocked) << "8 MiB fitted the socket";
  EXPECT_GT(pos, 0u);
  spawn([&]() -> awaitable<void> {
    auto [wec, wn] = co_await asio::async_write(
        srv, asio::buffer(data.data() + pos, data.size() - pos), kTuple);
    EXPECT_FALSE(wec) << wec.message();
    EXPECT_EQ(wn, data.size() - pos);
  });
  std::string back(data.size(), '\0');
  spawn([&]() -> awaitable<void> {
    auto [rec, rn] = co_await asio::async_read(*conn.client, asio::buffer(back), kTuple);
    EXPECT_FALSE(rec) << rec.message();
  });
  run();
  // A record sent twice (or lost) would shift every byte after it.
  EXPECT_TRUE(back == data) << "bytes differ after the would_block";
}

TEST_F(TlsSocketStreamTest, PartialReadsAndWritesNeverCompleteInline) {
  Conn conn = connect();
  handshake(conn);
  Pattern p(1);
  const std::string up = p.bytes(100 * 1024);
  const std::string big = p.bytes(200 * 1024);
  const std::string small = p.bytes(100);
  const std::string a = p.bytes(10), b = p.bytes(20), c = p.bytes(70 * 1024);

  // The client's bytes are read one at a time; everything after the first
  // byte of a record is already in OpenSSL's buffer, and must still be
  // completed through the executor, not inside async_read_some.
  spawn([&]() -> awaitable<void> {
    auto [ec, n] = co_await asio::async_write(*conn.client, asio::buffer(up), kTuple);
    EXPECT_FALSE(ec);
  });
  spawn([&]() -> awaitable<void> {
    std::string got;
    char ch;
    auto [ec, n] = co_await conn.server->async_read_some(asio::buffer(&ch, 1), kTuple);
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, 1u);
    got += ch;
    bool inline_called = false, called = false;
    conn.server->async_read_some(asio::buffer(&ch, 1), [&](error_code e, size_t k) {
      inline_called = true;
      EXPECT_FALSE(e);
      EXPECT_EQ(k, 1u);
    });
    called = inline_called;
    EXPECT_FALSE(called) << "completed inside the initiating call";
    asio::steady_timer t(io_, 1ms);
    co_await t.async_wait(kTuple);
    EXPECT_TRUE(inline_called);
    got += ch;
    while (got.size() < up.size()) {
      auto [e2, k] = co_await conn.server->async_read_some(asio::buffer(&ch, 1), kTuple);
      if (e2) break;
      EXPECT_EQ(k, 1u);
      got += ch;
    }
    EXPECT_TRUE(got == up);
  });
  run();

  // One write_some from a buffer bigger than a record writes one record.
  // Several small pieces are coalesced into one record.
  const size_t allocated_before = TlsSocketStream::scratch_blocks_allocated();
  std::string expect;
  spawn([&]() -> awaitable<void> {
    auto [ec, n] = co_await conn.server->async_write_some(asio::buffer(big), kTuple);
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, 16384u);
    auto [ec2, n2] = co_await asio::async_write(*conn.server, asio::buffer(big.data() + n, big.size() - n), kTuple);
    EXPECT_FALSE(ec2);
    expect = big;
    for (char ch : small) {
      auto [e, k] = co_await conn.server->async_write_some(asio::buffer(&ch, 1), kTuple);
      EXPECT_FALSE(e);
      EXPECT_EQ(k, 1u);
    }
    expect += small;
    std::array<asio::const_buffer, 3> pieces{asio::buffer(a), asio::buffer(b), asio::buffer(c)};
    auto [e3, n3] = co_await conn.server->async_write_some(pieces, kTuple);
    EXPECT_FALSE(e3);
    EXPECT_EQ(n3, 16384u);  // 10 + 20 + 16354 in one record
    expect += (a + b + c).substr(0, n3);
    // Steady state: many coalesced writes, no new scratch block.
    for (int i = 0; i < 1000; ++i) {
      std::array<asio::const_buffer, 3> three{asio::buffer(a.data(), 5), asio::buffer(b.data(), 6),
                                              asio::buffer(small.data(), 7)};
      auto [e4, n4] = co_await conn.server->async_write_some(three, kTuple);
      EXPECT_FALSE(e4);
      EXPECT_EQ(n4, 18u);
      expect += a.substr(0, 5) + b.substr(0, 6) + small.substr(0, 7);
    }
    // An empty write completes with 0 bytes.
    auto [e5, n5] = co_await conn.server->async_write_some(asio::const_buffer(), kTuple);
    EXPECT_FALSE(e5);
    EXPECT_EQ(n5, 0u);
    auto [sec] = co_await conn.server->async_shutdown(kTuple);
    EXPECT_FALSE(sec);
  });
  std::string received;
  error_code client_end;
  spawn([&]() -> awaitable<void> {
    char buf[3000];
    for (;;) {
      auto [ec, n] = co_await conn.client->async_read_some(asio::buffer(buf), kTuple);
      if (ec) {
        client_end = ec;
        break;
      }
      received.append(buf, n);
    }
  });
  run();
  EXPECT_EQ(client_end, asio::error::eof) << client_end.message();
  EXPECT_EQ(received.size(), expect.size());
  EXPECT_TRUE(received == expect);
  EXPECT_LE(TlsSocketStream::scratch_blocks_allocated(), allocated_before + 1);
}

// Both directions at once, intact: 1 GiB each way in an optimized build
// (about 7 CPU-seconds for both ends, sha256 included), 64 MiB under
// sanitizers or without NDEBUG. SAG_TLS_BULK_MIB overrides the size.
#if defined(NDEBUG) && !defined(SAG_TEST_SANITIZED)
constexpr size_t kBulkMiB = 1024;
#else
constexpr size_t kBulkMiB = 64;
#endif

TEST_F(TlsSocketStreamTest, BulkBothWaysAtOnce) {
  size_t mib = kBulkMiB;
  if (const char* v = std::getenv("SAG_TLS_BULK_MIB")) mib = std::strtoul(v, nullptr, 10);
  const size_t total = mib << 20;
  Conn conn = connect();
  handshake(conn);

  struct Side {
    std::string sent, received;
  };
  Side server_side, client_side;

  auto writer = [&](auto& stream, uint64_t seed, std::string& hash) -> awaitable<void> {
    Pattern p(seed);
    Sha256 h;
    std::vector<unsigned char> chunk(64 * 1024);
    uint64_t split = seed;
    for (size_t done = 0; done < total;) {
      const size_t n = std::min(chunk.size(), total - done);
      p.fill(chunk.data(), n);
      h.update(chunk.data(), n);
      // Two pieces of varying sizes: exercises coalescing on our side.
      split = split * 6364136223846793005ull + 1442695040888963407ull;
      const size_t first = std::min(n, static_cast<size_t>(1 + (split >> 33) % 20000));
      std::array<asio::const_buffer, 2> pieces{asio::buffer(chunk.data(), first),
                                               asio::buffer(chunk.data() + first, n - first)};
      auto [ec, k] = co_await asio::async_write(stream, pieces, kTuple);
      if (ec) {
        ADD_FAILURE() << "write: " << ec.message();
        co_return;
      }
      done += n;
    }
    hash = h.hex();
  };
  auto reader = [&](auto& stream, std::string& hash) -> awaitable<void> {
    Sha256 h;
    std::vector<unsigned char> buf(64 * 1024);
    for (size_t done = 0; done < total;) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), kTuple);
      if (ec) {
        ADD_FAILURE() << "read: " << ec.message() << " after " << done;
        co_return;
      }
      h.update(buf.data(), n);
      done += n;
    }
    hash = h.hex();
  };
  const auto t0 = std::chrono::steady_clock::now();
  spawn([&]() { return writer(*conn.server, 7, server_side.sent); });
  spawn([&]() { return reader(*conn.server, server_side.received); });
  spawn([&]() { return writer(*conn.client, 8, client_side.sent); });
  spawn([&]() { return reader(*conn.client, client_side.received); });
  run(300s);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ bulk     ] %zu MiB each way at once in %.2f s (one thread, both ends, sha256 included)\n",
              mib, secs);
  EXPECT_FALSE(server_side.sent.empty());
  EXPECT_EQ(server_side.sent, client_side.received);
  EXPECT_EQ(client_side.sent, server_side.received);
}

TEST_F(TlsSocketStreamTest, CloseNotifyFromServerIsEofAtClient) {
  Conn conn = connect();
  handshake(conn);
  error_code client_end, server_shutdown = asio::error::would_block;
  spawn([&]() -> awaitable<void> {
    auto [ec, n] = co_await asio::async_write(*conn.server, asio::buffer("last words", 10), kTuple);
    EXPECT_FALSE(ec);
    // Completes once ours is sent; the client never sends its own.
    auto [sec] = co_await conn.server->async_shutdown(kTuple);
    server_shutdown = sec;
  });
  std::string got;
  spawn([&]() -> awaitable<void> {
    char buf[64];
    for (;;) {
      auto [ec, n] = co_await conn.client->async_read_some(asio::buffer(buf), kTuple);
      if (ec) {
        client_end = ec;
        co_return;
      }
      got.append(buf, n);
    }
  });
  run();
  EXPECT_FALSE(server_shutdown) << server_shutdown.message();
  EXPECT_EQ(got, "last words");
  EXPECT_EQ(client_end, asio::error::eof) << client_end.message();
  EXPECT_FALSE(conn.server->close_notify_received());
  EXPECT_TRUE(conn.server->close_notify_sent());
}

// The WebSocket tunnel's case: the client's FIN without close_notify reads
// as stream_truncated, and the server can still write (a half-close).
TEST_F(TlsSocketStreamTest, TcpCloseWithoutCloseNotifyIsTruncatedAndStillWritable) {
  Conn conn = connect();
  handshake(conn);
  error_code server_read, client_end;
  std::string got;
  spawn([&]() -> awaitable<void> {
    char buf[64];
    auto [ec, n] = co_await conn.server->async_read_some(asio::buffer(buf), kTuple);
    server_read = ec;
    auto [wec, wn] = co_await asio::async_write(*conn.server, asio::buffer("bye", 3), kTuple);
    EXPECT_FALSE(wec) << wec.message();
    auto [sec] = co_await conn.server->async_shutdown(kTuple);
    EXPECT_FALSE(sec) << sec.message();
  });
  spawn([&]() -> awaitable<void> {
    conn.client->next_layer().shutdown(tcp::socket::shutdown_send);
    char buf[64];
    for (;;) {
      auto [ec, n] = co_await conn.client->async_read_some(asio::buffer(buf), kTuple);
      if (ec) {
        client_end = ec;
        co_return;
      }
      got.append(buf, n);
    }
  });
  run();
  EXPECT_EQ(server_read, asio::ssl::error::stream_truncated) << server_read.message();
  EXPECT_EQ(got, "bye");
  EXPECT_EQ(client_end, asio::error::eof) << client_end.message();

  // A full close (FIN, then nothing) during the handshake: truncated too.
  auto [c, s] = tcp_pair();
  TlsSocketStream server(std::move(s), server_ssl_ctx());
  error_code hs = asio::error::would_block;
  server.async_handshake(asio::ssl::stream_base::server, [&](error_code ec) { hs = ec; });
  c.close();
  run();
  EXPECT_EQ(hs, asio::ssl::error::stream_truncated) << hs.message();
}

TEST_F(TlsSocketStreamTest, GarbageAfterHandshakeIsAnSslError) {
  Conn conn = connect();
  handshake(conn);
  error_code first, second;
  spawn([&]() -> awaitable<void> {
    char buf[64];
    auto [ec, n] = co_await conn.server->async_read_some(asio::buffer(buf), kTuple);
    first = ec;
    auto [ec2, n2] = co_await conn.server->async_read_some(asio::buffer(buf), kTuple);
    second = ec2;
    co_await conn.server->async_shutdown(kTuple);  // must not crash or hang
  });
  spawn([&]() -> awaitable<void> {
    std::string junk(300, '\0');
    Pattern(3).fill(reinterpret_cast<unsigned char*>(junk.data()), junk.size());
    junk[0] = 0x17, junk[1] = 0x03, junk[2] = 0x03, junk[3] = 0x01, junk[4] = 0x00;  // a record of 256
    co_await asio::async_write(conn.client->next_layer(), asio::buffer(junk), kTuple);
  });
  run();
  EXPECT_EQ(first.category(), asio::error::get_ssl_category()) << first.message();
  EXPECT_TRUE(second) << "a broken stream must keep failing";

  // Not TLS at all (a plain HTTP request) during the handshake.
  auto [c, s] = tcp_pair();
  TlsSocketStream server(std::move(s), server_ssl_ctx());
  error_code hs = asio::error::would_block;
  server.async_handshake(asio::ssl::stream_base::server, [&](error_code ec) { hs = ec; });
  asio::write(c, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  run();
  EXPECT_EQ(hs.category(), asio::error::get_ssl_category()) << hs.message();
}

TEST_F(TlsSocketStreamTest, CancellationCompletesPendingOpsWithOperationAborted) {
  // A client that connects and says nothing: the deadline cancels the socket.
  {
    auto [c, s] = tcp_pair();
    TlsSocketStream server(std::move(s), server_ssl_ctx());
    error_code hs = asio::error::would_block;
    server.async_handshake(asio::ssl::stream_base::server, [&](error_code ec) { hs = ec; });
    asio::steady_timer t(io_, 50ms);
    t.async_wait([&](error_code) { server.next_layer().cancel(); });
    run();
    EXPECT_EQ(hs, asio::error::operation_aborted) << hs.message();
  }
  // The same through the op's cancellation slot (`||` with a timer).
  {
    auto [c, s] = tcp_pair();
    TlsSocketStream server(std::move(s), server_ssl_ctx());
    size_t winner = 9;
    spawn([&]() -> awaitable<void> {
      asio::steady_timer t(io_, 50ms);
      auto r = co_await (server.async_handshake(asio::ssl::stream_base::server, kTuple) ||
                         t.async_wait(kTuple));
      winner = r.index();
    });
    run();
    EXPECT_EQ(winner, 1u);
  }
  // An idle read (graceful stop cancels it) and a stalled write, both
  // pending at once; then a close from elsewhere.
  {
    Conn conn = connect();
    handshake(conn);
    error_code rec = asio::error::would_block, wec = asio::error::would_block;
    size_t written = 0;
    char rbuf[16];
    conn.server->async_read_some(asio::buffer(rbuf), [&](error_code ec, size_t) { rec = ec; });
    std::string big = Pattern(5).bytes(16 * 1024 * 1024);  // the client reads nothing
    bool write_done = false;
    spawn([&]() -> awaitable<void> {
      while (written < big.size()) {
        auto [ec, n] = co_await conn.server->async_write_some(
            asio::buffer(big.data() + written, big.size() - written), kTuple);
        if (ec) {
          wec = ec;
          break;
        }
        written += n;
      }
      write_done = true;
    });
    // Like a deadline: cancel once the write has stalled on the full socket
    // (cancel() reaches only operations waiting on the socket, so it is
    // repeated until both have ended).
    spawn([&]() -> awaitable<void> {
      size_t last = ~size_t{0};
      while (!write_done || rec == asio::error::would_block) {
        asio::steady_timer t(io_, 20ms);
        co_await t.async_wait(kTuple);
        if (written == last) conn.server->next_layer().cancel();
        last = written;
      }
    });
    run();
    EXPECT_EQ(rec, asio::error::operation_aborted) << rec.message();
    EXPECT_EQ(wec, asio::error::operation_aborted) << wec.message();
    EXPECT_LT(written, big.size());

    // The cancelled write left a record half sent. The next write finishes
    // it first but reports only its own bytes (the cancelled write's are
    // not its to count); the shutdown then sends close_notify, so the client
    // sees a clean stream: a prefix of `big`, "tail", and eof.
    error_code tec = asio::error::would_block, sec = asio::error::would_block, client_end;
    size_t tail_n = 0;
    spawn([&]() -> awaitable<void> {
      auto [e, n] = co_await asio::async_write(*conn.server, asio::buffer("tail", 4), kTuple);
      tec = e;
      tail_n = n;
      auto [e2] = co_await conn.server->async_shutdown(kTuple);
      sec = e2;
    });
    std::string got;
    spawn([&]() -> awaitable<void> {
      std::vector<char> buf(64 * 1024);
      for (;;) {
        auto [e, n] = co_await conn.client->async_read_some(asio::buffer(buf), kTuple);
        if (e) {
          client_end = e;
          co_return;
        }
        got.append(buf.data(), n);
      }
    });
    run();
    EXPECT_FALSE(tec) << tec.message();
    EXPECT_EQ(tail_n, 4u);
    EXPECT_FALSE(sec) << sec.message();
    EXPECT_EQ(client_end, asio::error::eof) << client_end.message();
    ASSERT_GE(got.size(), written + 4);
    EXPECT_LE(got.size(), written + 16384 + 4);
    const size_t prefix = got.size() - 4;
    EXPECT_EQ(got.compare(0, prefix, big, 0, prefix), 0);
    EXPECT_EQ(got.substr(prefix), "tail");

    // Closed from elsewhere while a read waits.
    rec = asio::error::would_block;
    conn.server->async_read_some(asio::buffer(rbuf), [&](error_code ec, size_t) { rec = ec; });
    asio::post(io_, [&] { conn.server->next_layer().close(); });
    run();
    EXPECT_EQ(rec, asio::error::operation_aborted) << rec.message();
    // And later operations fail cleanly.
    rec = asio::error::would_block;
    conn.server->async_read_some(asio::buffer(rbuf), [&](error_code ec, size_t) { rec = ec; });
    run();
    EXPECT_TRUE(rec && rec != asio::error::would_block) << rec.message();
  }
}

TEST_F(TlsSocketStreamTest, RenegotiationIsRefused) {
  Conn conn = connect(TLS1_2_VERSION);
  handshake(conn);
  ASSERT_EQ(SSL_version(conn.server->native_handle()), TLS1_2_VERSION);
  EXPECT_FALSE(conn.server->on_record_stream());  // TLS 1.2 stays with OpenSSL
  error_code server_end, client_hs = asio::error::would_block;
  long accepts_before = 0, completed_before = 0;
  spawn([&]() -> awaitable<void> { server_end = co_await echo(*conn.server); });
  spawn([&]() -> awaitable<void> {
    EXPECT_EQ(SSL_renegotiate(conn.client->native_handle()), 1);
    auto [ec] = co_await conn.client->async_handshake(asio::ssl::stream_base::client, kTuple);
    client_hs = ec;
    if (!ec) {
      // Ignored rather than refused: the stream must still work.
      auto [wec, wn] = co_await asio::async_write(*conn.client, asio::buffer("ping", 4), kTuple);
      EXPECT_FALSE(wec);
      char back[4];
      auto [rec, rn] = co_await asio::async_read(*conn.client, asio::buffer(back), kTuple);
      EXPECT_FALSE(rec);
      co_await conn.client->async_shutdown(kTuple);
    }
  });
  accepts_before = SSL_CTX_sess_accept(server_ssl_ctx());
  completed_before = SSL_CTX_sess_accept_good(server_ssl_ctx());
  run();
  std::printf("[ reneg    ] client: %s; server read ended with: %s\n", client_hs.message().c_str(),
              server_end.message().c_str());
  // No second handshake happened on the server: OpenSSL looked at the
  // ClientHello (counted as an attempt), answered no_renegotiation, and
  // completed nothing.
  EXPECT_EQ(SSL_CTX_sess_accept(server_ssl_ctx()), accepts_before);
  EXPECT_EQ(SSL_CTX_sess_accept_good(server_ssl_ctx()), completed_before);
  EXPECT_TRUE(client_hs) << "the client's renegotiation must not succeed";
  EXPECT_TRUE(server_end);
}

// SNI picks the certificate through the listener context's callback.
TEST_F(TlsSocketStreamTest, SniSelectsTheCertificate) {
  for (const auto& [sni, cn] : std::vector<std::pair<std::string, std::string>>{
           {"other.test", "other.test"}, {"localhost", "localhost"}, {"unknown.test", "localhost"}}) {
    Conn conn = connect();
    SSL_set_tlsext_host_name(conn.client->native_handle(), sni.c_str());
    handshake(conn);
    EXPECT_EQ(testing::common_name(SSL_get0_peer_certificate(conn.client->native_handle())), cn) << sni;
    // Every SNI context hands its TLS 1.3 connections over as the default does.
    EXPECT_TRUE(conn.server->on_record_stream()) << sni;
  }
}

// Our close_notify keeps the session resumable: TLS 1.3 tickets, and TLS 1.2
// session ids from the server's cache (which OpenSSL drops when an SSL is
// freed without having sent close_notify: the control case).
TEST_F(TlsSocketStreamTest, SessionsResumeAfterOurCloseNotify) {
  struct Case {
    const char* name;
    int version;
    bool tickets;
    bool server_close_notify;
    bool expect_reuse;
  };
  for (const Case& k : {Case{"tls1.3 ticket", TLS1_3_VERSION, true, true, true},
                        Case{"tls1.2 ticket", TLS1_2_VERSION, true, true, true},
                        Case{"tls1.2 session id", TLS1_2_VERSION, false, true, true},
                        Case{"tls1.2 session id, no close_notify", TLS1_2_VERSION, false, false, false}}) {
    SSL_SESSION* session = nullptr;
    {
      Conn conn = connect(k.version);
      if (!k.tickets) SSL_set_options(conn.client->native_handle(), SSL_OP_NO_TICKET);
      handshake(conn);
      spawn([&]() -> awaitable<void> {
        char buf[16];
        auto [ec, n] = co_await conn.server->async_read_some(asio::buffer(buf), kTuple);
        EXPECT_EQ(ec, asio::error::eof) << k.name;
        if (k.server_close_notify) {
          auto [sec] = co_await conn.server->async_shutdown(kTuple);
          EXPECT_FALSE(sec) << k.name << ": " << sec.message();
        } else {
          conn.server.reset();
        }
      });
      spawn([&]() -> awaitable<void> {
        // Sends close_notify, reads (the TLS 1.3 tickets on the way) until ours.
        co_await conn.client->async_shutdown(kTuple);
        session = SSL_get1_session(conn.client->native_handle());
      });
      run();
    }
    ASSERT_NE(session, nullptr) << k.name;
    Conn again = connect(k.version);
    if (!k.tickets) SSL_set_options(again.client->native_handle(), SSL_OP_NO_TICKET);
    SSL_set_session(again.client->native_handle(), session);
    SSL_SESSION_free(session);
    handshake(again);
    EXPECT_EQ(SSL_session_reused(again.client->native_handle()) == 1, k.expect_reuse) << k.name;
    EXPECT_EQ(again.server->session_reused(), k.expect_reuse) << k.name;
    EXPECT_EQ(again.server->on_record_stream(), k.version == TLS1_3_VERSION) << k.name;
    // The resumed connection carries data both ways (a resumption sends a
    // different number of tickets: the hand-over must count them).
    std::string back;
    spawn([&]() -> awaitable<void> { co_await echo(*again.server); });
    spawn([&]() -> awaitable<void> {
      const std::string msg = "after resumption";
      co_await asio::async_write(*again.client, asio::buffer(msg), kTuple);
      back.resize(msg.size());
      auto [ec, n] = co_await asio::async_read(*again.client, asio::buffer(back), kTuple);
      EXPECT_FALSE(ec) << k.name << ": " << ec.message();
      co_await again.client->async_shutdown(kTuple);
    });
    run();
    EXPECT_EQ(back, "after resumption") << k.name;
  }
}

// Beast's composed operations over the stream: a request read with
// http::async_read, a response bigger than a record with http::async_write.
TEST_F(TlsSocketStreamTest, BeastHttpOverTheStream) {
  Conn conn = connect();
  handshake(conn);
  const std::string body = Pattern(9).bytes(100 * 1024);
  std::string target_seen, client_body;
  spawn([&]() -> awaitable<void> {
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(*conn.server, buf, req, kTuple);
    EXPECT_FALSE(ec) << ec.message();
    target_seen = std::string(req.target());
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/octet-stream");
    res.set(http::field::server, "sag-test");
    res.body() = body;
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(*conn.server, res, kTuple);
    EXPECT_FALSE(wec) << wec.message();
  });
  spawn([&]() -> awaitable<void> {
    http::request<http::empty_body> req{http::verb::get, "/hello", 11};
    req.set(http::field::host, "localhost");
    auto [ec, n] = co_await http::async_write(*conn.client, req, kTuple);
    EXPECT_FALSE(ec);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    auto [rec, rn] = co_await http::async_read(*conn.client, buf, res, kTuple);
    EXPECT_FALSE(rec) << rec.message();
    client_body = res.body();
  });
  run();
  EXPECT_EQ(target_seen, "/hello");
  EXPECT_TRUE(client_body == body);
}

// Heap held per idle server connection (handshake done, a read waiting for
// the first request), ours vs Beast's ssl_stream. Measured as what the heap
// gives back when the server streams are destroyed.
TEST_F(TlsSocketStreamTest, IdleMemoryIsFarBelowBeastSslStream) {
#if defined(SAG_TEST_SANITIZED)
  GTEST_SKIP() << "mallinfo2 does not see the sanitizer's allocator";
#endif
  if (std::getenv("SAG_SANITIZED") != nullptr) GTEST_SKIP() << "mallinfo2 does not see the sanitizer's allocator";
  constexpr int kConns = 200;
  auto measure = [&](auto make_server, bool exchange) -> size_t {
    using Server = std::remove_reference_t<decltype(*make_server(std::declval<tcp::socket>()))>;
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<std::unique_ptr<Server>> servers;
    for (int i = 0; i < kConns; ++i) {
      auto [c, s] = tcp_pair();
      clients.push_back(std::make_unique<Client>(std::move(c), client_ctx_));
      servers.push_back(make_server(std::move(s)));
    }
    int ok = 0;
    for (int i = 0; i < kConns; ++i) {
      servers[i]->async_handshake(asio::ssl::stream_base::server, [&](error_code ec) { ok += !ec; });
      clients[i]->async_handshake(asio::ssl::stream_base::client, [&](error_code ec) { ok += !ec; });
    }
    run();
    EXPECT_EQ(ok, 2 * kConns);
    static char sink[4096];
    if (exchange) {  // one small request and answer, as on a keep-alive connection
      int done = 0;
      for (int i = 0; i < kConns; ++i) {
        asio::async_write(*clients[i], asio::buffer("GET / HTTP/1.1\r\n\r\n", 18), [](error_code, size_t) {});
        asio::async_read(*servers[i], asio::buffer(sink, 18), [&, i](error_code ec, size_t) {
          EXPECT_FALSE(ec);
          asio::async_write(*servers[i], asio::buffer(sink, 2000), [&](error_code, size_t) { ++done; });
        });
        asio::async_read(*clients[i], asio::buffer(sink + 2048, 2000), [](error_code, size_t) {});
      }
      run();
      EXPECT_EQ(done, kConns);
    }
    int aborted = 0;
    for (auto& s : servers)
      s->async_read_some(asio::buffer(sink, sizeof sink), [&](error_code ec, size_t) {
        aborted += ec == asio::error::operation_aborted;
      });
    io_.restart();
    io_.poll();
    malloc_trim(0);
    const size_t with = mallinfo2().uordblks;
    for (auto& s : servers) s->next_layer().cancel();
    io_.restart();
    io_.poll();
    EXPECT_EQ(aborted, kConns);
    servers.clear();
    io_.restart();
    io_.poll();
    const size_t without = mallinfo2().uordblks;
    return with > without ? (with - without) / kConns : 0;
  };
  auto ours = [&](tcp::socket s) {
    return std::make_unique<TlsSocketStream>(std::move(s), server_ctx_->asio_context());
  };
  auto theirs = [&](tcp::socket s) {
    return std::make_unique<beast::ssl_stream<tcp::socket>>(std::move(s), server_ctx_->asio_context());
  };
  measure(ours, false);  // warm-up (OpenSSL's lazily built tables, asio's pools)
  measure(theirs, false);
  const size_t ours_hs = measure(ours, false), theirs_hs = measure(theirs, false);
  const size_t ours_ex = measure(ours, true), theirs_ex = measure(theirs, true);
  std::printf("[ idle mem ] per server connection after the handshake: TlsSocketStream %zu B, "
              "beast::ssl_stream %zu B\n",
              ours_hs, theirs_hs);
  std::printf("[ idle mem ] after one request/response:               TlsSocketStream %zu B, "
              "beast::ssl_stream %zu B\n",
              ours_ex, theirs_ex);
  EXPECT_LT(ours_hs * 2, theirs_hs);
  EXPECT_LT(ours_ex * 2, theirs_ex);
}

}  // namespace
}  // namespace sag::tls
