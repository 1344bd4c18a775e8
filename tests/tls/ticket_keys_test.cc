#include "tls/ticket_keys.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "tests/tls/tls_test_util.h"
#include "tls/server_tls_context.h"

namespace sag::tls {
namespace {

namespace fs = std::filesystem;
using testing::ClientOptions;

// Each ServerTlsContext stands for one replica: its own SSL_CTXs and session
// cache, so a resumption across two of them can only come from a ticket.
class TicketKeysTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/sag-ticket-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ASSERT_TRUE(testing::make_certificate(root_ / "a.crt", root_ / "a.key", testing::KeyType::kEcdsa,
                                          "a.test", {"a.test"}));
    ASSERT_TRUE(testing::make_certificate(root_ / "b.crt", root_ / "b.key", testing::KeyType::kRsa,
                                          "b.test", {"b.test"}));
    fs::create_directories(root_ / "certs");
    testing::concat_files(root_ / "certs" / "10-a.pem", {root_ / "a.crt", root_ / "a.key"});
    testing::concat_files(root_ / "certs" / "20-b.pem", {root_ / "b.crt", root_ / "b.key"});
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static std::shared_ptr<ServerTlsContext> replica(std::shared_ptr<TicketKeys> keys, bool tickets = true) {
    config::TlsConfig config;
    config.certificates_dir = (root_ / "certs").string();
    config.session_tickets = tickets;
    std::vector<std::string> errors;
    auto ctx = ServerTlsContext::create(config, {"http/1.1"}, errors, std::move(keys));
    EXPECT_TRUE(errors.empty()) << errors.front();
    return ctx;
  }

  static SSL_CTX* native(const std::shared_ptr<ServerTlsContext>& ctx) {
    return ctx->asio_context().native_handle();
  }

  // Whether the handshake left the client a session holding a ticket. A
  // missing one is a failed expectation too: a test expecting no resumption
  // must not pass because nothing was issued to resume with.
  static bool issued_ticket(const testing::HandshakeResult& r) {
    EXPECT_TRUE(r.ok);
    EXPECT_NE(r.session, nullptr) << "the handshake left no session";
    if (!r.ok || r.session == nullptr) return false;
    const bool ticket = SSL_SESSION_has_ticket(r.session.get()) == 1;
    EXPECT_TRUE(ticket) << "the session holds no ticket";
    return ticket;
  }

  // A first handshake against `from` (expecting a ticket), then a
  // resumption attempt against `to`; whether the session was reused.
  static bool resumes(SSL_CTX* from, SSL_CTX* to, int version, const std::string& sni = "") {
    auto first = testing::handshake(from, ClientOptions().with_sni(sni).with_max_version(version));
    if (!issued_ticket(first)) return false;
    return resumes_with(first.session.get(), to, version, sni);
  }
  static bool resumes_with(SSL_SESSION* session, SSL_CTX* to, int version, const std::string& sni = "") {
    auto second =
        testing::handshake(to, ClientOptions().with_sni(sni).with_max_version(version).with_resume(session));
    EXPECT_TRUE(second.ok);
    return second.ok && second.reused;
  }

  static inline fs::path root_;
};

constexpr int kVersions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

TEST_F(TicketKeysTest, SerializeParseRoundTrip) {
  auto k = TicketKey::generate();
  ASSERT_TRUE(k);
  std::string wire = k->serialize();
  ASSERT_EQ(wire.size(), TicketKey::kBytes);
  EXPECT_EQ(wire.size(), 80u);
  auto back = TicketKey::parse(wire);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, *k);
  // name, then AES key, then HMAC key: the layout replicas exchange.
  EXPECT_EQ(wire.substr(0, 16), std::string(reinterpret_cast<const char*>(k->name.data()), 16));
  EXPECT_EQ(wire.substr(16, 32), std::string(reinterpret_cast<const char*>(k->aes.data()), 32));
  EXPECT_EQ(wire.substr(48, 32), std::string(reinterpret_cast<const char*>(k->hmac.data()), 32));
  EXPECT_FALSE(TicketKey::parse(wire.substr(1)));
  EXPECT_FALSE(TicketKey::parse(wire + "x"));
  auto other = TicketKey::generate();
  ASSERT_TRUE(other);
  EXPECT_NE(*other, *k);
}

TEST_F(TicketKeysTest, SharedRingResumesAcrossContexts) {
  auto ring = std::make_shared<TicketKeys>();
  auto a = replica(ring);
  auto b = replica(ring);
  ASSERT_TRUE(a && b);
  for (int v : kVersions) {
    SCOPED_TRACE(v);
    EXPECT_TRUE(resumes(native(a), native(b), v));
    EXPECT_TRUE(resumes(native(b), native(a), v));
    // The RSA certificate lives on another SSL_CTX (moved to by SNI).
    EXPECT_TRUE(resumes(native(a), native(b), v, "b.test"));
  }
}

// The control: without a shared ring each context has OpenSSL's own keys.
TEST_F(TicketKeysTest, SeparateKeysDoNotResumeAcrossContexts) {
  auto a = replica(nullptr);
  auto b = replica(nullptr);
  auto c = replica(std::make_shared<TicketKeys>());
  auto d = replica(std::make_shared<TicketKeys>());
  ASSERT_TRUE(a && b && c && d);
  for (int v : kVersions) {
    SCOPED_TRACE(v);
    EXPECT_FALSE(resumes(native(a), native(b), v));
    EXPECT_FALSE(resumes(native(c), native(d), v));
    EXPECT_TRUE(resumes(native(c), native(c), v));
  }
}

TEST_F(TicketKeysTest, SameKeyMaterialInTwoRingsResumes) {
  // Two processes that loaded the same bytes (from Redis) agree.
  auto key = TicketKey::generate();
  ASSERT_TRUE(key);
  auto ring_a = std::make_shared<TicketKeys>();
  auto ring_b = std::make_shared<TicketKeys>();
  ring_a->set(*TicketKey::parse(key->serialize()));
  ring_b->set(*TicketKey::parse(key->serialize()));
  auto a = replica(ring_a);
  auto b = replica(ring_b);
  ASSERT_TRUE(a && b);
  for (int v : kVersions) EXPECT_TRUE(resumes(native(a), native(b), v)) << v;
}

TEST_F(TicketKeysTest, OneRotationKeepsOldTicketsTwoDoNot) {
  for (int v : kVersions) {
    SCOPED_TRACE(v);
    auto ring = std::make_shared<TicketKeys>();
    auto a = replica(ring);
    auto b = replica(ring);
    ASSERT_TRUE(a && b);
    auto first = testing::handshake(native(a), ClientOptions().with_max_version(v));
    ASSERT_TRUE(issued_ticket(first));
    const TicketKey before = ring->snapshot()->keys.front();
    ring->rotate();
    ASSERT_EQ(ring->snapshot()->keys.size(), 2u);
    EXPECT_NE(ring->snapshot()->keys.front(), before);
    EXPECT_EQ(ring->snapshot()->keys[1], before);
    EXPECT_TRUE(resumes_with(first.session.get(), native(b), v));
    ring->rotate();
    EXPECT_EQ(ring->snapshot()->keys.size(), 2u);
    EXPECT_FALSE(resumes_with(first.session.get(), native(b), v));
    // A ticket issued after the rotations still works.
    EXPECT_TRUE(resumes(native(a), native(b), v));
  }
}

// A ticket under a decrypt-only key resumes and is replaced by one under
// the current key, which then resumes where only the current key is known.
TEST_F(TicketKeysTest, OldKeyTicketIsRenewedUnderCurrentKey) {
  for (int v : kVersions) {
    SCOPED_TRACE(v);
    auto old_ring = std::make_shared<TicketKeys>();
    auto old_ctx = replica(old_ring);
    auto first = testing::handshake(native(old_ctx), ClientOptions().with_max_version(v));
    ASSERT_TRUE(issued_ticket(first));

    const TicketKey old_key = old_ring->snapshot()->keys.front();
    auto current = TicketKey::generate();
    ASSERT_TRUE(current);
    auto ring = std::make_shared<TicketKeys>();
    ring->set(*current, std::span<const TicketKey>(&old_key, 1));
    auto ctx = replica(ring);
    auto second = testing::handshake(native(ctx), ClientOptions().with_max_version(v).with_resume(first.session.get()));
    ASSERT_TRUE(issued_ticket(second));
    EXPECT_TRUE(second.reused);

    auto only_current = std::make_shared<TicketKeys>();
    only_current->set(*current);
    auto fresh_ctx = replica(only_current);
    EXPECT_TRUE(resumes_with(second.session.get(), native(fresh_ctx), v));
    EXPECT_FALSE(resumes_with(first.session.get(), native(fresh_ctx), v));
  }
}

TEST_F(TicketKeysTest, LocalRotationFollowsTheClock) {
  for (int v : kVersions) {
    SCOPED_TRACE(v);
    auto t = std::chrono::steady_clock::time_point(std::chrono::hours(1000));
    auto ring = std::make_shared<TicketKeys>(std::chrono::hours(12), [&t] { return t; });
    auto a = replica(ring);
    ASSERT_TRUE(a);
    auto first = testing::handshake(native(a), ClientOptions().with_max_version(v));
    ASSERT_TRUE(issued_ticket(first));
    const TicketKey k0 = ring->snapshot()->keys.front();

    t += std::chrono::hours(11);
    EXPECT_TRUE(resumes_with(first.session.get(), native(a), v));
    EXPECT_EQ(ring->snapshot()->keys.front(), k0);

    // Past 12 h the next ticket operation rotates; the old key still decrypts.
    t += std::chrono::hours(2);
    auto second = testing::handshake(native(a), ClientOptions().with_max_version(v));
    ASSERT_TRUE(issued_ticket(second));
    ASSERT_EQ(ring->snapshot()->keys.size(), 2u);
    const TicketKey k1 = ring->snapshot()->keys.front();
    EXPECT_NE(k1, k0);
    EXPECT_EQ(ring->snapshot()->keys[1], k0);

    // Another 12 h: k0 is dropped, k1 still decrypts. (The ticket's own
    // lifetime is not what refuses it: SSL_SESSION times use the real clock.)
    t += std::chrono::hours(12) + std::chrono::minutes(1);
    EXPECT_FALSE(resumes_with(first.session.get(), native(a), v));
    ASSERT_EQ(ring->snapshot()->keys.size(), 2u);
    EXPECT_EQ(ring->snapshot()->keys[1], k1);
    EXPECT_TRUE(resumes_with(second.session.get(), native(a), v));

    // Idle for two periods: nothing older survives.
    const auto third = testing::handshake(native(a), ClientOptions().with_max_version(v));
    ASSERT_TRUE(issued_ticket(third));
    t += std::chrono::hours(25);
    EXPECT_FALSE(resumes_with(third.session.get(), native(a), v));
    EXPECT_EQ(ring->snapshot()->keys.size(), 1u);
  }
}

TEST_F(TicketKeysTest, NoLocalRotationWithoutAPeriod) {
  auto t = std::chrono::steady_clock::time_point(std::chrono::hours(1000));
  auto ring = std::make_shared<TicketKeys>(std::chrono::seconds(0), [&t] { return t; });
  auto a = replica(ring);
  ASSERT_TRUE(a);
  const TicketKey k0 = ring->snapshot()->keys.front();
  auto first = testing::handshake(native(a), ClientOptions().with_max_version(TLS1_3_VERSION));
  ASSERT_TRUE(issued_ticket(first));
  t += std::chrono::hours(1000);
  EXPECT_TRUE(resumes_with(first.session.get(), native(a), TLS1_3_VERSION));
  EXPECT_EQ(ring->snapshot()->keys.front(), k0);
}

TEST_F(TicketKeysTest, TicketsOffInstallsNothing) {
  auto ring = std::make_shared<TicketKeys>();
  auto a = replica(ring, false);
  auto b = replica(ring, false);
  ASSERT_TRUE(a && b);
  EXPECT_NE(SSL_CTX_get_options(native(a)) & SSL_OP_NO_TICKET, 0u);
  EXPECT_EQ(ring.use_count(), 1);  // no SSL_CTX holds the ring
  auto first = testing::handshake(native(a), ClientOptions().with_max_version(TLS1_2_VERSION));
  ASSERT_TRUE(first.ok);
  EXPECT_EQ(SSL_SESSION_has_ticket(first.session.get()), 0);
  for (int v : kVersions) {
    auto r = testing::handshake(native(a), ClientOptions().with_max_version(v));
    ASSERT_TRUE(r.ok);
    EXPECT_FALSE(resumes_with(r.session.get(), native(b), v)) << v;
  }
}

// The SSL_CTXs keep the ring alive after the caller drops it.
TEST_F(TicketKeysTest, ContextsOwnTheRing) {
  auto ring = std::make_shared<TicketKeys>();
  std::weak_ptr<TicketKeys> weak = ring;
  auto a = replica(ring);
  auto b = replica(ring);
  ASSERT_TRUE(a && b);
  ring.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_TRUE(resumes(native(a), native(b), TLS1_3_VERSION));
  a.reset();
  b.reset();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace sag::tls
