#include "tls/server_tls_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "tests/tls/tls_test_util.h"

namespace sag::tls {
namespace {

namespace fs = std::filesystem;
using testing::ClientOptions;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::KeyType;

// Certificates are generated once per run into `base_` and copied into a
// fresh directory per test, in whatever combination the test needs.
class ServerTlsContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/sag-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    base_ = root_ / "base";
    fs::create_directories(base_);
    struct Spec {
      const char* name;
      KeyType type;
      const char* cn;
      std::vector<std::string> sans;
    };
    const Spec specs[] = {
        {"default", KeyType::kEcdsa, "default.test", {"default.test"}},
        {"exact", KeyType::kEcdsa, "a.example.com", {"a.example.com"}},
        {"wild", KeyType::kRsa, "wild.example.com", {"*.example.com"}},
        {"other", KeyType::kRsa, "other.test", {}},
        {"spare", KeyType::kEcdsa, "spare.test", {"spare.test"}},
    };
    for (const auto& s : specs) {
      ASSERT_TRUE(testing::make_certificate(base_ / (std::string(s.name) + ".crt"),
                                            base_ / (std::string(s.name) + ".key"), s.type, s.cn, s.sans))
          << "openssl req failed for " << s.name;
    }
  }

  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void SetUp() override {
    dir_ = root_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
  }

  // Writes dir_/file as the concatenation of base files ("exact.crt", ...).
  void put(const std::string& file, const std::vector<std::string>& parts) {
    std::vector<fs::path> in;
    for (const auto& p : parts) in.push_back(base_ / p);
    testing::concat_files(dir_ / file, in);
  }
  void put_pem(const std::string& file, const std::string& base_name) {
    put(file, {base_name + ".crt", base_name + ".key"});
  }

  std::string dir() const { return dir_.string(); }
  std::string path(const std::string& file) const { return (dir_ / file).string(); }

  static config::TlsConfig dir_config(const std::string& d) {
    config::TlsConfig c;
    c.certificates_dir = d;
    return c;
  }

  // The usual directory: a default, an exact name, a wildcard, a CN-only
  // certificate given as a .crt/.key pair.
  std::shared_ptr<ServerTlsContext> standard(std::vector<std::string> supported = {"h2", "http/1.1"},
                                             config::TlsConfig config = {}) {
    put_pem("10-default.pem", "default");
    put_pem("20-exact.pem", "exact");
    put_pem("30-wild.pem", "wild");
    put("40-other.crt", {"other.crt"});
    put("40-other.key", {"other.key"});
    config.certificates_dir = dir();
    std::vector<std::string> errors;
    auto ctx = ServerTlsContext::create(config, supported, errors);
    EXPECT_THAT(errors, IsEmpty());
    return ctx;
  }

  static inline fs::path root_;
  static inline fs::path base_;
  fs::path dir_;
};

TEST_F(ServerTlsContextTest, SniExactBeatsWildcard) {
  auto ctx = standard();
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(ctx->certificate_for("a.example.com"), "20-exact");
  EXPECT_EQ(ctx->certificate_for("A.Example.COM"), "20-exact");
  EXPECT_EQ(ctx->certificate_for("a.example.com."), "20-exact");
  EXPECT_EQ(ctx->certificate_for("b.example.com"), "30-wild");
}

TEST_F(ServerTlsContextTest, WildcardMatchesExactlyOneLabel) {
  auto ctx = standard();
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(ctx->certificate_for("zzz.example.com"), "30-wild");
  EXPECT_EQ(ctx->certificate_for("a.b.example.com"), "10-default");
  EXPECT_EQ(ctx->certificate_for("example.com"), "10-default");
  EXPECT_EQ(ctx->certificate_for(".example.com"), "10-default");
}

TEST_F(ServerTlsContextTest, UnknownNameGetsDefault) {
  auto ctx = standard();
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(ctx->certificate_for("unknown.test"), "10-default");
  EXPECT_EQ(ctx->certificate_for(""), "10-default");
  EXPECT_EQ(ctx->certificate_for(std::string(300, 'a')), "10-default");
}

TEST_F(ServerTlsContextTest, CommonNameUsedOnlyWithoutDnsSans) {
  auto ctx = standard();
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(ctx->certificate_for("other.test"), "40-other");
  // wild.pem's CN is wild.example.com but it has a DNS SAN, so the CN is not
  // indexed; the name still matches through the wildcard SAN.
  EXPECT_EQ(ctx->certificate_for("wild.example.com"), "30-wild");
  EXPECT_EQ(ctx->certificate_for("default.test"), "10-default");
}

TEST_F(ServerTlsContextTest, DefaultIsFirstFileByName) {
  put_pem("zz.pem", "exact");
  put_pem("aa.pem", "spare");
  put("README.md", {"other.crt"});  // other extensions are ignored
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(dir_config(dir()), {"http/1.1"}, errors);
  ASSERT_NE(ctx, nullptr) << ::testing::PrintToString(errors);
  EXPECT_EQ(ctx->certificate_for("nothing.test"), "aa");
  EXPECT_EQ(ctx->certificate_for("a.example.com"), "zz");
}

TEST_F(ServerTlsContextTest, CertificateFilesInListOrder) {
  config::TlsConfig config;
  config.certificate_files = {{(base_ / "other.crt").string(), (base_ / "other.key").string()},
                              {(base_ / "exact.crt").string(), (base_ / "exact.key").string()}};
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(config, {"http/1.1"}, errors);
  ASSERT_NE(ctx, nullptr) << ::testing::PrintToString(errors);
  EXPECT_EQ(ctx->certificate_for("nothing.test"), "other");
  EXPECT_EQ(ctx->certificate_for("a.example.com"), "exact");
}

TEST_F(ServerTlsContextTest, PemAndCrtKeyPairsBothLoad) {
  put_pem("one.pem", "exact");
  put("two.crt", {"wild.crt"});
  put("two.key", {"wild.key"});
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(dir_config(dir()), {"http/1.1"}, errors);
  ASSERT_NE(ctx, nullptr) << ::testing::PrintToString(errors);
  EXPECT_EQ(ctx->certificate_for("a.example.com"), "one");
  EXPECT_EQ(ctx->certificate_for("x.example.com"), "two");
}

TEST_F(ServerTlsContextTest, KeyFirstPemLoads) {
  put("keyfirst.pem", {"exact.key", "exact.crt"});
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(dir_config(dir()), {"http/1.1"}, errors);
  ASSERT_NE(ctx, nullptr) << ::testing::PrintToString(errors);
}

TEST_F(ServerTlsContextTest, MismatchedKeysAreErrorsNamingTheFile) {
  put("same-type.pem", {"exact.crt", "spare.key"});  // EC cert, other EC key
  put("other-type.pem", {"exact.crt", "wild.key"});  // EC cert, RSA key
  put_pem("good.pem", "default");
  put("pair.crt", {"wild.crt"});
  put("pair.key", {"other.key"});
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(dir_config(dir()), {"http/1.1"}, errors);
  EXPECT_EQ(ctx, nullptr);
  EXPECT_THAT(errors, ElementsAre(path("other-type.pem") + ": private key does not match the certificate",
                                  path("pair.key") + ": private key does not match the certificate",
                                  path("same-type.pem") + ": private key does not match the certificate"));
}

TEST_F(ServerTlsContextTest, PemWithoutKeyIsAnError) {
  put("nokey.pem", {"exact.crt"});
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(dir_config(dir()), {"http/1.1"}, errors);
  EXPECT_EQ(ctx, nullptr);
  EXPECT_THAT(errors, ElementsAre(path("nokey.pem") + ": no private key"));
}

TEST_F(ServerTlsContextTest, PemWithoutCertificateIsAnError) {
  put("nocert.pem", {"exact.key"});
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(dir_config(dir()), {"http/1.1"}, errors);
  EXPECT_EQ(ctx, nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr(path("nocert.pem") + ": no usable certificate"));
}

TEST_F(ServerTlsContextTest, MissingDirectory) {
  std::string missing = dir() + "/nope/";
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(dir_config(missing), {"http/1.1"}, errors);
  EXPECT_EQ(ctx, nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr(missing + ": cannot open directory"));
}

TEST_F(ServerTlsContextTest, EmptyDirectory) {
  put("README.md", {"exact.crt"});
  std::string d = dir() + "/";
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(dir_config(d), {"http/1.1"}, errors);
  EXPECT_EQ(ctx, nullptr);
  EXPECT_THAT(errors, ElementsAre(d + ": no certificate found (*.pem or NAME.crt + NAME.key)"));
}

TEST_F(ServerTlsContextTest, CrtWithoutKeyAndKeyWithoutCrt) {
  put("lonely.crt", {"exact.crt"});
  put("orphan.key", {"exact.key"});
  put_pem("good.pem", "default");
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(dir_config(dir()), {"http/1.1"}, errors);
  EXPECT_EQ(ctx, nullptr);
  EXPECT_THAT(errors, ElementsAre(path("lonely.crt") + ": no matching lonely.key",
                                  path("orphan.key") + ": no matching orphan.crt"));
}

TEST_F(ServerTlsContextTest, MissingListedFiles) {
  config::TlsConfig config;
  config.certificate_files = {{path("absent.crt"), path("absent.key")}};
  std::vector<std::string> errors;
  auto ctx = ServerTlsContext::create(config, {"http/1.1"}, errors);
  EXPECT_EQ(ctx, nullptr);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors[0], HasSubstr(path("absent.crt") + ": cannot read: No such file"));
  EXPECT_THAT(errors[1], HasSubstr(path("absent.key") + ": cannot read: No such file"));
}

TEST_F(ServerTlsContextTest, ContextSettings) {
  auto ctx = standard();
  ASSERT_NE(ctx, nullptr);
  SSL_CTX* native = ctx->asio_context().native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(native), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(native), TLS1_3_VERSION);
  uint64_t opts = SSL_CTX_get_options(native);
  EXPECT_TRUE(opts & SSL_OP_CIPHER_SERVER_PREFERENCE);
  EXPECT_TRUE(opts & SSL_OP_NO_RENEGOTIATION);
  EXPECT_TRUE(opts & SSL_OP_NO_COMPRESSION);
  EXPECT_FALSE(opts & SSL_OP_NO_TICKET);
  EXPECT_TRUE(SSL_CTX_get_mode(native) & SSL_MODE_RELEASE_BUFFERS);
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(native), SSL_SESS_CACHE_SERVER);
}

// --- real handshakes over a BIO pair ---------------------------------------

TEST_F(ServerTlsContextTest, HandshakeServesCertificateBySni) {
  auto ctx = standard();
  ASSERT_NE(ctx, nullptr);
  SSL_CTX* native = ctx->asio_context().native_handle();
  struct Case {
    std::string sni, cn;
  };
  for (const auto& c : {Case{"a.example.com", "a.example.com"}, Case{"b.example.com", "wild.example.com"},
                        Case{"a.b.example.com", "default.test"}, Case{"other.test", "other.test"},
                        Case{"", "default.test"}}) {
    for (int max : {TLS1_2_VERSION, TLS1_3_VERSION}) {
      auto r = testing::handshake(
          native, ClientOptions().with_sni(c.sni).with_alpn({"http/1.1"}).with_max_version(max));
      ASSERT_TRUE(r.ok) << c.sni;
      EXPECT_EQ(r.peer_cn, c.cn) << c.sni;
      EXPECT_EQ(r.server_cn, c.cn) << c.sni;
      EXPECT_EQ(r.version, max);
    }
  }
}

TEST_F(ServerTlsContextTest, AlpnFollowsSupportedProtocols) {
  auto only_h1 = standard({"http/1.1"});
  ASSERT_NE(only_h1, nullptr);
  auto r = testing::handshake(only_h1->asio_context().native_handle(),
                              ClientOptions().with_sni("a.example.com").with_alpn({"h2", "http/1.1"}));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.alpn, "http/1.1");
  EXPECT_EQ(r.server_alpn, "http/1.1");

  auto both = standard({"h2", "http/1.1"});
  ASSERT_NE(both, nullptr);
  SSL_CTX* native = both->asio_context().native_handle();
  r = testing::handshake(native, ClientOptions().with_sni("a.example.com").with_alpn({"h2", "http/1.1"}));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.alpn, "h2");
  EXPECT_EQ(r.server_alpn, "h2");
  // Server preference: the client's order does not matter.
  r = testing::handshake(native, ClientOptions().with_sni("b.example.com").with_alpn({"http/1.1", "h2"}));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.alpn, "h2");
}

TEST_F(ServerTlsContextTest, AlpnConfigOrderIsServerPreference) {
  config::TlsConfig config;
  config.alpn = {"http/1.1", "h2"};
  auto ctx = standard({"h2", "http/1.1"}, config);
  ASSERT_NE(ctx, nullptr);
  auto r =
      testing::handshake(ctx->asio_context().native_handle(), ClientOptions().with_alpn({"h2", "http/1.1"}));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.alpn, "http/1.1");
}

TEST_F(ServerTlsContextTest, AlpnWithoutOverlapContinuesWithoutAlpn) {
  auto ctx = standard({"http/1.1"});
  ASSERT_NE(ctx, nullptr);
  SSL_CTX* native = ctx->asio_context().native_handle();
  auto r = testing::handshake(native, ClientOptions().with_sni("a.example.com").with_alpn({"h2", "spdy/3"}));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.alpn, "");
  EXPECT_EQ(r.server_alpn, "");
  r = testing::handshake(native, ClientOptions().with_sni("a.example.com"));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.server_alpn, "");
}

TEST_F(ServerTlsContextTest, OldProtocolVersionsAreRefused) {
  auto ctx = standard();
  ASSERT_NE(ctx, nullptr);
  SSL_CTX* native = ctx->asio_context().native_handle();
  auto r = testing::handshake(native, ClientOptions()
                                          .with_sni("b.example.com")
                                          .with_min_version(TLS1_VERSION)
                                          .with_max_version(TLS1_1_VERSION));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.server_failed);
}

TEST_F(ServerTlsContextTest, MinVersionTls13) {
  config::TlsConfig config;
  config.min_version = TLS1_3_VERSION;
  auto ctx = standard({"http/1.1"}, config);
  ASSERT_NE(ctx, nullptr);
  SSL_CTX* native = ctx->asio_context().native_handle();
  auto r =
      testing::handshake(native, ClientOptions().with_sni("a.example.com").with_max_version(TLS1_2_VERSION));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.server_failed);
  r = testing::handshake(native, ClientOptions().with_sni("a.example.com"));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.version, TLS1_3_VERSION);
}

TEST_F(ServerTlsContextTest, Tls12OffersOnlyEcdheAead) {
  auto ctx = standard();
  ASSERT_NE(ctx, nullptr);
  SSL_CTX* native = ctx->asio_context().native_handle();
  auto tls12 = [&](const std::string& sni, const std::string& cipher) {
    return testing::handshake(
        native, ClientOptions().with_sni(sni).with_max_version(TLS1_2_VERSION).with_tls12_ciphers(cipher));
  };
  // CBC (against the RSA certificate, so only the cipher policy can refuse it).
  auto r = tls12("b.example.com", "ECDHE-RSA-AES128-SHA");
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.server_failed);
  // RSA key exchange.
  r = tls12("b.example.com", "AES128-GCM-SHA256");
  EXPECT_FALSE(r.ok);
  r = tls12("a.example.com", "ECDHE-ECDSA-AES128-GCM-SHA256");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(r.peer_cn, "a.example.com");
  r = tls12("b.example.com", "ECDHE-RSA-CHACHA20-POLY1305");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.cipher, "ECDHE-RSA-CHACHA20-POLY1305");
}

TEST_F(ServerTlsContextTest, SessionsResume) {
  struct Case {
    std::string sni, cn;
  };
  // "b.example.com" switches to another SSL_CTX: the session cache and ticket
  // keys of the context the connection started on must still apply.
  for (const auto& c : {Case{"", "default.test"}, Case{"b.example.com", "wild.example.com"}}) {
    for (bool tickets : {true, false}) {
      for (int max : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        SCOPED_TRACE(::testing::Message()
                     << "sni=" << c.sni << " tickets=" << tickets << " max=" << std::hex << max);
        config::TlsConfig config;
        config.session_tickets = tickets;
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        auto ctx = standard({"http/1.1"}, config);
        ASSERT_NE(ctx, nullptr);
        SSL_CTX* native = ctx->asio_context().native_handle();
        EXPECT_EQ((SSL_CTX_get_options(native) & SSL_OP_NO_TICKET) != 0, !tickets);
        auto first = testing::handshake(native, ClientOptions().with_sni(c.sni).with_max_version(max));
        ASSERT_TRUE(first.ok);
        ASSERT_NE(first.session, nullptr);
        if (max == TLS1_2_VERSION) {
          EXPECT_EQ(SSL_SESSION_has_ticket(first.session.get()) == 1, tickets);
        }
        auto second = testing::handshake(
            native, ClientOptions().with_sni(c.sni).with_max_version(max).with_resume(first.session.get()));
        ASSERT_TRUE(second.ok);
        EXPECT_TRUE(second.reused);
        EXPECT_EQ(second.peer_cn, c.cn);
      }
    }
  }
}

// The asio context and the Impl hold separate references to the default
// SSL_CTX; under ASan this catches a double free or a leak. An SSL made from
// the context keeps its SSL_CTX alive by reference counting.
TEST_F(ServerTlsContextTest, ReferenceCountingSurvivesDestruction) {
  auto ctx = standard();
  ASSERT_NE(ctx, nullptr);
  SSL* ssl = SSL_new(ctx->asio_context().native_handle());
  ASSERT_NE(ssl, nullptr);
  SSL_free(ssl);
  ctx.reset();
}

}  // namespace
}  // namespace sag::tls
