// A fixture for tests of TLS streams over real loopback sockets: a temporary
// folder with two certificates (localhost, ECDSA, the default; other.test,
// RSA), the listener context made from it (ALPN h2 and http/1.1), an
// acceptor on 127.0.0.1, a client context that verifies nothing, and the
// io_context the test runs. Suites derive from it (TlsSocketStreamTest,
// RecordStreamTest); the folder and context live for one suite.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "tests/tls/tls_test_util.h"
#include "tls/server_tls_context.h"

namespace sag::tls::testing {

class TlsStreamFixture : public ::testing::Test {
 protected:
  using tcp = boost::asio::ip::tcp;

  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/sag-tls-stream-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ASSERT_TRUE(make_certificate(root_ / "dev.crt", root_ / "dev.key", KeyType::kEcdsa, "localhost",
                                 {"localhost"}));
    ASSERT_TRUE(make_certificate(root_ / "other.crt", root_ / "other.key", KeyType::kRsa, "other.test",
                                 {"other.test"}));
    config::TlsConfig cfg;
    cfg.certificates_dir = root_.string();
    std::vector<std::string> errors;
    server_ctx_ = ServerTlsContext::create(cfg, {"h2", "http/1.1"}, errors);
    ASSERT_NE(server_ctx_, nullptr) << (errors.empty() ? "" : errors[0]);
  }
  static void TearDownTestSuite() {
    server_ctx_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  void SetUp() override {
    ASSERT_NE(server_ctx_, nullptr);
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({boost::asio::ip::make_address_v4("127.0.0.1"), 0});
    acceptor_.listen(1024);
    client_ctx_.set_verify_mode(boost::asio::ssl::verify_none);
  }

  SSL_CTX* server_ssl_ctx() { return server_ctx_->asio_context().native_handle(); }

  // A connected pair of TCP sockets (client, server), both TCP_NODELAY as
  // the gateway's accepted sockets are.
  std::pair<tcp::socket, tcp::socket> tcp_pair() {
    tcp::socket c(io_);
    c.connect(acceptor_.local_endpoint());
    tcp::socket s = acceptor_.accept();
    s.set_option(tcp::no_delay(true));
    c.set_option(tcp::no_delay(true));
    return {std::move(c), std::move(s)};
  }

  // Spawns a coroutine; a thrown exception fails the test.
  template <class F>
  void spawn(F&& f) {
    ++running_;
    boost::asio::co_spawn(io_, std::forward<F>(f), [this](std::exception_ptr e) {
      --running_;
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          ADD_FAILURE() << "coroutine threw: " << ex.what();
        }
      }
    });
  }

  // Runs the io_context until it has no work or `limit` passed; every
  // spawned coroutine must have finished.
  void run(std::chrono::steady_clock::duration limit = std::chrono::seconds(60)) {
    io_.restart();
    io_.run_for(limit);
    EXPECT_EQ(running_, 0) << "coroutines still running after the time limit";
  }

  static inline std::filesystem::path root_;
  static inline std::shared_ptr<ServerTlsContext> server_ctx_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  boost::asio::ssl::context client_ctx_{boost::asio::ssl::context::tls_client};
  int running_ = 0;
};

}  // namespace sag::tls::testing
