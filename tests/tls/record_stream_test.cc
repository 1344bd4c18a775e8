// The TLS 1.3 record layer a server connection runs on after its handshake
// (RecordStream, RecordCipher). The peer is OpenSSL's client for the
// handshake; then, to send what OpenSSL never would (records cut anywhere,
// empty and padded records, alerts, forbidden messages), the test seals
// records itself with the client's traffic secrets (from the client
// context's keylog callback) and writes them on the raw socket, and opens
// what the server sends the same way.
#include "tls/record_stream.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <poll.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "config/base/asio_prelude.h"
#include "config/base/hex.h"
#include "tests/tls/tls_stream_fixture.h"
#include "tls/record_cipher.h"
#include "tls/server_tls_context.h"
#include "tls/tls_socket_stream.h"

namespace sag::tls {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using Client = asio::ssl::stream<tcp::socket>;
using Bytes = std::vector<unsigned char>;
using namespace std::chrono_literals;
using base::kTuple;

constexpr std::uint8_t kAppData = RecordCipher::kAppData, kAlert = RecordCipher::kAlert,
                       kHandshake = RecordCipher::kHandshake;

Bytes bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// --- RecordCipher alone ----------------------------------------------------

struct Pair {
  RecordCipher seal, open;
  explicit Pair(std::uint16_t suite, std::size_t len) {
    unsigned char secret[48];
    for (std::size_t i = 0; i < sizeof secret; ++i) secret[i] = static_cast<unsigned char>(i * 7 + 1);
    EXPECT_TRUE(seal.init(suite, secret, len, true));
    EXPECT_TRUE(open.init(suite, secret, len, false));
  }
};

// Returns the opened content, or "<fail>".
std::string round_trip(Pair& p, std::uint8_t type, std::string_view plain, std::uint8_t& got_type,
                       int flip = -1) {
  std::vector<unsigned char> rec(RecordCipher::sealed_size(plain.size()));
  const std::size_t n = p.seal.seal(type, plain.data(), plain.size(), rec.data());
  EXPECT_EQ(n, rec.size());
  if (flip >= 0) rec[static_cast<std::size_t>(flip)] ^= 0x01;
  std::size_t size = 0;
  if (!p.open.open(rec.data(), rec.data() + 5, n - 5, rec.data() + 5, got_type, size)) return "<fail>";
  return std::string(reinterpret_cast<char*>(rec.data() + 5), size);
}

TEST(RecordCipherTest, SealsAndOpensEverySuiteInSequence) {
  for (auto [suite, len] : {std::pair<std::uint16_t, std::size_t>{0x1301, 32}, {0x1302, 48}, {0x1303, 32}}) {
    ASSERT_TRUE(RecordCipher::supports(suite));
    Pair p(suite, len);
    std::uint8_t type = 0;
    EXPECT_EQ(round_trip(p, kAppData, "first", type), "first");
    EXPECT_EQ(type, kAppData);
    EXPECT_EQ(round_trip(p, kAppData, "", type), "");  // empty records exist
    EXPECT_EQ(round_trip(p, kAlert, std::string("\x01\x00", 2), type), std::string("\x01\x00", 2));
    EXPECT_EQ(type, kAlert);
    // A record sealed with inner type 0 after "data" + 0x17: the opener
    // sees content type 23 and one byte of zero padding.
    EXPECT_EQ(round_trip(p, 0, std::string("data\x17\0\0", 7), type), "data");
    EXPECT_EQ(type, kAppData);
    // Both sides move to the next key together.
    ASSERT_TRUE(p.seal.next_key());
    ASSERT_TRUE(p.open.next_key());
    EXPECT_EQ(round_trip(p, kAppData, "after update", type), "after update");
  }
  EXPECT_FALSE(RecordCipher::supports(0x1304));  // CCM: OpenSSL keeps those connections
}

TEST(RecordCipherTest, TamperingAndSkewFailAllPaddingHasNoType) {
  std::uint8_t type = 0;
  for (int flip : {0, 3, 5, 9, 5 + 6 + 1 + 3}) {  // outer type, length (AAD), body, tag
    Pair p(0x1301, 32);
    EXPECT_EQ(round_trip(p, kAppData, "secret", type, flip), "<fail>") << flip;
  }
  Pair skew(0x1301, 32);
  std::vector<unsigned char> rec(RecordCipher::sealed_size(3));
  skew.seal.seal(kAppData, "one", 3, rec.data());  // sequence 0, never opened
  EXPECT_EQ(round_trip(skew, kAppData, "two", type), "<fail>");  // sealed as 1, opened as 0
  Pair one_side(0x1303, 32);
  ASSERT_TRUE(one_side.seal.next_key());
  EXPECT_EQ(round_trip(one_side, kAppData, "x", type), "<fail>");
  // Authentic but without a content type: opened, type 0, nothing in it
  // (RecordStream answers unexpected_message).
  Pair zeros(0x1302, 48);
  type = kAppData;
  EXPECT_EQ(round_trip(zeros, 0, std::string("\0\0\0", 3), type), "");
  EXPECT_EQ(type, 0);
}

// --- RecordStream behind a real handshake ----------------------------------

// The client's view of both traffic secrets, from its keylog callback.
struct Secrets {
  Bytes client, server;
};
Secrets g_secrets;

Bytes unhex(const char* hex) {
  const auto raw = base::hex_decode(hex);
  EXPECT_TRUE(raw.has_value()) << hex;
  return raw ? Bytes(raw->begin(), raw->end()) : Bytes();
}

void client_keylog(const SSL*, const char* line) {
  const char* hex = std::strrchr(line, ' ') + 1;
  if (std::strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0) g_secrets.client = unhex(hex);
  if (std::strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0) g_secrets.server = unhex(hex);
}

class RecordStreamTest : public testing::TlsStreamFixture {
 protected:
  void SetUp() override {
    TlsStreamFixture::SetUp();
    SSL_CTX_set_keylog_callback(client_ctx_.native_handle(), client_keylog);
  }

  // A TLS 1.3 handshake with `suite`; then the server is on its
  // RecordStream and the test holds the client's keys.
  void connect(const char* suite = "TLS_AES_128_GCM_SHA256") {
    auto [c, s] = tcp_pair();
    client_ = std::make_unique<Client>(std::move(c), client_ctx_);
    SSL_set_min_proto_version(client_->native_handle(), TLS1_3_VERSION);
    ASSERT_EQ(SSL_set_ciphersuites(client_->native_handle(), suite), 1);
    server_ = std::make_unique<TlsSocketStream>(std::move(s), server_ctx_->asio_context());
    g_secrets = {};
    error_code sec = asio::error::would_block, cec = asio::error::would_block;
    server_->async_handshake(asio::ssl::stream_base::server, [&](error_code ec) { sec = ec; });
    client_->async_handshake(asio::ssl::stream_base::client, [&](error_code ec) { cec = ec; });
    run();
    ASSERT_FALSE(sec) << sec.message();
    ASSERT_FALSE(cec) << cec.message();
    ASSERT_TRUE(server_->on_record_stream());
    suite_ = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(client_->native_handle()));
    ASSERT_TRUE(tx_.init(suite_, g_secrets.client.data(), g_secrets.client.size(), true));
    ASSERT_TRUE(rx_.init(suite_, g_secrets.server.data(), g_secrets.server.size(), false));
  }

  // The (test) client's next record.
 public:
  Bytes seal(std::uint8_t type, const Bytes& plain) {
    Bytes rec(RecordCipher::sealed_size(plain.size()));
    EXPECT_EQ(tx_.seal(type, plain.data(), plain.size(), rec.data()), rec.size());
    return rec;
  }

 protected:
  // Writes raw bytes on the client's socket.
  void send_raw(const Bytes& b) { asio::write(client_->next_layer(), asio::buffer(b)); }

  struct Record {
    std::uint8_t type;
    Bytes content;
  };
  // Opens every record the server sent so far (the session tickets are
  // skipped); a record that fails to open ends the list with type 0.
  std::vector<Record> server_records() {
    tcp::socket& sock = client_->next_layer();
    sock.non_blocking(true);
    // Whatever arrives until the socket stays quiet for 50 ms.
    for (;;) {
      unsigned char buf[4096];
      error_code ec;
      const std::size_t n = sock.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) {
        pollfd p{sock.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, 50) == 1) continue;
      }
      if (ec) break;
      raw_.insert(raw_.end(), buf, buf + n);
    }
    sock.non_blocking(false);
    std::vector<Record> out;
    while (raw_.size() >= 5) {
      const std::size_t body = std::size_t{raw_[3]} << 8 | raw_[4];
      if (raw_.size() < 5 + body) break;
      Bytes content(body);
      std::uint8_t type = 0;
      std::size_t size = 0;
      const bool ok = rx_.open(raw_.data(), raw_.data() + 5, body, content.data(), type, size);
      raw_.erase(raw_.begin(), raw_.begin() + static_cast<std::ptrdiff_t>(5 + body));
      if (!ok) {
        out.push_back({0, {}});
        break;
      }
      content.resize(size);
      if (type == kHandshake && !content.empty() && content[0] == 4) continue;  // NewSessionTicket
      // The server's KeyUpdate: what follows it is under its next key.
      if (type == kHandshake && !content.empty() && content[0] == 24) {
        EXPECT_TRUE(rx_.next_key());
      }
      out.push_back({type, std::move(content)});
    }
    return out;
  }

  // The server reads until an error: what it read, and the error.
  void read_all(std::string& got, error_code& end, std::size_t chunk = 4096) {
    asio::co_spawn(
        io_,
        [&, chunk]() -> awaitable<void> {
          std::vector<char> buf(chunk);
          for (;;) {
            auto [ec, n] = co_await server_->async_read_some(asio::buffer(buf), kTuple);
            if (ec) {
              end = ec;
              co_return;
            }
            got.append(buf.data(), n);
          }
        },
        asio::detached);
  }

  std::unique_ptr<Client> client_;
  std::unique_ptr<TlsSocketStream> server_;
  std::uint16_t suite_ = 0;
  RecordCipher tx_, rx_;
  Bytes raw_;
};

TEST_F(RecordStreamTest, EverySuiteEchoesWithOpenSsl) {
  for (const char* suite : {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
    connect(suite);
    if (HasFatalFailure()) return;
    const std::string msg(40000, 'q');
    std::string back, at_server;
    error_code server_end, client_end;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          char buf[1000];  // smaller than a record: decrypted bytes wait in the stream
          while (at_server.size() < msg.size()) {
            auto [ec, n] = co_await server_->async_read_some(asio::buffer(buf), kTuple);
            if (ec) co_return;
            at_server.append(buf, n);
          }
          auto [wec, wn] = co_await asio::async_write(*server_, asio::buffer(at_server), kTuple);
          EXPECT_FALSE(wec);
          auto [sec] = co_await server_->async_shutdown(kTuple);
          server_end = sec;
        },
        asio::detached);
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          co_await asio::async_write(*client_, asio::buffer(msg), kTuple);
          back.resize(msg.size());
          auto [ec, n] = co_await asio::async_read(*client_, asio::buffer(back), kTuple);
          client_end = ec;
        },
        asio::detached);
    run();
    EXPECT_EQ(back, msg) << suite;
    EXPECT_FALSE(client_end) << suite << ": " << client_end.message();
    EXPECT_FALSE(server_end) << suite << ": " << server_end.message();
    EXPECT_TRUE(server_->close_notify_sent()) << suite;
    raw_.clear();
  }
}

// Records cut at every odd place, empty and padded records, several in one
// segment, one bigger than the reader's buffer; user_canceled is ignored and
// close_notify ends the stream as eof.
TEST_F(RecordStreamTest, RecordsCutAnywherePaddedOrEmptyReadWhole) {
  connect();
  if (HasFatalFailure()) return;
  std::string got;
  error_code end;
  read_all(got, end, 700);
  asio::steady_timer pause(io_);
  const std::string big(16384, 'B');
  std::string expect;
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        auto pause_a_little = [&]() -> awaitable<void> {
          pause.expires_after(5ms);
          co_await pause.async_wait(kTuple);
        };
        tcp::socket& sock = client_->next_layer();
        // One record a byte at a time (the header too).
        const Bytes first = seal(kAppData, bytes("byte by byte|"));
        for (unsigned char b : first) {
          co_await asio::async_write(sock, asio::buffer(&b, 1), kTuple);
          co_await pause_a_little();
        }
        expect += "byte by byte|";
        // Empty, padded, and two records in one write.
        Bytes many = seal(kAppData, {});
        for (const Bytes& r : {seal(0, bytes(std::string("padded|\x17\0\0\0\0", 12))),
                               seal(kAppData, bytes("two|")), seal(kAppData, bytes("in one|"))}) {
          many.insert(many.end(), r.begin(), r.end());
        }
        expect += "padded|two|in one|";
        co_await asio::async_write(sock, asio::buffer(many), kTuple);
        co_await pause_a_little();
        // A full record split after its header, then the rest with the next
        // record's first bytes.
        Bytes full = seal(kAppData, bytes(big));
        const Bytes tail = seal(kAppData, bytes("|end"));
        full.insert(full.end(), tail.begin(), tail.end());
        co_await asio::async_write(sock, asio::buffer(full.data(), 5), kTuple);
        co_await pause_a_little();
        co_await asio::async_write(sock, asio::buffer(full.data() + 5, full.size() - 5 - 3), kTuple);
        co_await pause_a_little();
        co_await asio::async_write(sock, asio::buffer(full.data() + full.size() - 3, 3), kTuple);
        expect += big + "|end";
        Bytes closing = seal(kAlert, {1, 90});  // user_canceled
        const Bytes close_notify = seal(kAlert, {1, 0});
        closing.insert(closing.end(), close_notify.begin(), close_notify.end());
        co_await asio::async_write(sock, asio::buffer(closing), kTuple);
      },
      asio::detached);
  run();
  EXPECT_TRUE(got == expect) << got.size() << " of " << expect.size();
  EXPECT_EQ(end, asio::error::eof) << end.message();
  EXPECT_TRUE(server_->close_notify_received());
  // After the client's close_notify the server may still write (TLS 1.3
  // half-close), then closes its side.
  error_code wec = asio::error::would_block, sec = asio::error::would_block;
  asio::async_write(*server_, asio::buffer("late", 4), [&](error_code ec, std::size_t) { wec = ec; });
  run();
  server_->async_shutdown([&](error_code ec) { sec = ec; });
  run();
  EXPECT_FALSE(wec) << wec.message();
  EXPECT_FALSE(sec) << sec.message();
  const auto recs = server_records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].type, kAppData);
  EXPECT_EQ(recs[0].content, bytes("late"));
  EXPECT_EQ(recs[1].type, kAlert);
  EXPECT_EQ(recs[1].content, (Bytes{1, 0}));
}

// A KeyUpdate asking for ours: the server's next record is its KeyUpdate
// (under the old key), and its data follows under the new one.
TEST_F(RecordStreamTest, RequestedKeyUpdateIsAnsweredBeforeTheNextRecord) {
  connect("TLS_AES_256_GCM_SHA384");
  if (HasFatalFailure()) return;
  std::string got;
  Bytes out = seal(kHandshake, {24, 0, 0, 1, 1});
  ASSERT_TRUE(tx_.next_key());
  const Bytes ping = seal(kAppData, bytes("ping"));
  out.insert(out.end(), ping.begin(), ping.end());
  send_raw(out);
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        char buf[16];
        auto [ec, n] = co_await server_->async_read_some(asio::buffer(buf), kTuple);
        got.assign(buf, n);
        for (int i = 0; i < 2; ++i) {
          auto [wec, wn] = co_await asio::async_write(*server_, asio::buffer("pong", 4), kTuple);
          EXPECT_FALSE(wec) << wec.message();
        }
      },
      asio::detached);
  run();
  EXPECT_EQ(got, "ping");
  const auto recs = server_records();
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].type, kHandshake);
  EXPECT_EQ(recs[0].content, (Bytes{24, 0, 0, 1, 0}));  // ours, not asking back
  for (int i : {1, 2}) {
    EXPECT_EQ(recs[i].type, kAppData);
    EXPECT_EQ(recs[i].content, bytes("pong"));
  }
}

// What a client may not send after the handshake ends the stream: reads and
// writes fail from then on, and the server says why with a fatal alert.
TEST_F(RecordStreamTest, ProtocolViolationsAreFatalWithAnAlert) {
  struct Case {
    const char* name;
    std::uint8_t alert;  // what the server sends back; 0: nothing
    std::function<Bytes(RecordStreamTest&)> make;
  };
  const std::vector<Case> cases = {
      {"unprotected alert", 10, [](RecordStreamTest&) { return Bytes{0x15, 3, 3, 0, 2, 2, 40}; }},
      {"change_cipher_spec", 10, [](RecordStreamTest&) { return Bytes{0x14, 3, 3, 0, 1, 1}; }},
      {"record over the limit", 22, [](RecordStreamTest&) { return Bytes{0x17, 3, 3, 0x41, 0x01}; }},
      {"tampered", 20,
       [](RecordStreamTest& t) {
         Bytes r = t.seal(kAppData, bytes("hello"));
         r[7] ^= 0x20;
         return r;
       }},
      {"NewSessionTicket from a client", 10,
       [](RecordStreamTest& t) { return t.seal(kHandshake, {4, 0, 0, 1, 0}); }},
      {"KeyUpdate not ending its record", 10,
       [](RecordStreamTest& t) { return t.seal(kHandshake, {24, 0, 0, 1, 0, 24, 0, 0, 1, 0}); }},
      {"only padding", 10, [](RecordStreamTest& t) { return t.seal(0, {0, 0}); }},
      {"the client's fatal alert", 0, [](RecordStreamTest& t) { return t.seal(kAlert, {2, 40}); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    connect();
    if (HasFatalFailure()) return;
    send_raw(c.make(*this));
    std::string got;
    error_code end, again, wrote;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          char buf[64];
          auto [ec, n] = co_await server_->async_read_some(asio::buffer(buf), kTuple);
          end = ec;
          auto [ec2, n2] = co_await server_->async_read_some(asio::buffer(buf), kTuple);
          again = ec2;
          auto [wec, wn] = co_await server_->async_write_some(asio::buffer("x", 1), kTuple);
          wrote = wec;
          co_await server_->async_shutdown(kTuple);  // must not hang or crash
        },
        asio::detached);
    run();
    EXPECT_EQ(end.category(), asio::error::get_ssl_category()) << end.message();
    EXPECT_EQ(again, end);
    EXPECT_EQ(wrote, end);
    if (c.alert == 0) {
      EXPECT_NE(end.message().find("handshake failure"), std::string::npos) << end.message();
    }
    const auto recs = server_records();
    if (c.alert == 0) {
      EXPECT_TRUE(recs.empty());
    } else {
      ASSERT_EQ(recs.size(), 1u);
      EXPECT_EQ(recs[0].type, kAlert);
      EXPECT_EQ(recs[0].content, (Bytes{2, c.alert}));
    }
    raw_.clear();
  }
}

}  // namespace
}  // namespace sag::tls
