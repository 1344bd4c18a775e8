// Test helpers: certificates generated at test time with the openssl CLI, and
// an in-memory TLS handshake (client and server joined by a BIO pair).
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tls/server_tls_context.h"

namespace sag::tls::testing {

enum class KeyType { kEcdsa, kRsa };

// Self-signed certificate for `cn`; `sans` become DNS SANs (none: CN only).
// Returns false when the openssl command failed.
inline bool make_certificate(const std::filesystem::path& cert, const std::filesystem::path& key,
                             KeyType type, const std::string& cn, const std::vector<std::string>& sans) {
  std::string cmd = "openssl req -x509 -noenc -days 30 -batch -newkey ";
  cmd += type == KeyType::kEcdsa ? "ec -pkeyopt ec_paramgen_curve:P-256" : "rsa:2048";
  cmd += " -keyout '" + key.string() + "' -out '" + cert.string() + "' -subj '/CN=" + cn + "'";
  if (!sans.empty()) {
    std::string san = "subjectAltName=";
    for (size_t i = 0; i < sans.size(); ++i) san += (i ? ",DNS:" : "DNS:") + sans[i];
    cmd += " -addext '" + san + "'";
  }
  cmd += " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Concatenates files (chain + key into one .pem).
inline void concat_files(const std::filesystem::path& out, const std::vector<std::filesystem::path>& in) {
  std::string cmd = "cat";
  for (const auto& p : in) cmd += " '" + p.string() + "'";
  cmd += " > '" + out.string() + "'";
  if (std::system(cmd.c_str()) != 0) std::abort();
}

struct ClientOptions {
  std::string sni;                // empty: no SNI
  std::vector<std::string> alpn;  // empty: no ALPN offered
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string tls12_ciphers;      // empty: OpenSSL default
  SSL_SESSION* resume = nullptr;  // offered for resumption when set

  ClientOptions& with_sni(std::string v) {
    sni = std::move(v);
    return *this;
  }
  ClientOptions& with_alpn(std::vector<std::string> v) {
    alpn = std::move(v);
    return *this;
  }
  ClientOptions& with_min_version(int v) {
    min_version = v;
    return *this;
  }
  ClientOptions& with_max_version(int v) {
    max_version = v;
    return *this;
  }
  ClientOptions& with_tls12_ciphers(std::string v) {
    tls12_ciphers = std::move(v);
    return *this;
  }
  ClientOptions& with_resume(SSL_SESSION* v) {
    resume = v;
    return *this;
  }
};

struct HandshakeResult {
  bool ok = false;
  bool server_failed = false;  // the server side reported a fatal error
  std::string alpn;            // as the client saw it
  std::string server_alpn;     // negotiated_alpn() on the server SSL
  std::string peer_cn;         // CN of the certificate the client received
  std::string server_cn;       // CN of the certificate the server used
  int version = 0;
  std::string cipher;
  bool reused = false;
  std::shared_ptr<SSL_SESSION> session;  // client's session, for resumption
};

inline std::string common_name(X509* cert) {
  if (cert == nullptr) return {};
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

// Runs a full handshake between a fresh client and a server SSL made from
// `server_ctx`, pumping both ends until done or either fails.
inline HandshakeResult handshake(SSL_CTX* server_ctx, const ClientOptions& opt) {
  HandshakeResult r;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> cctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  SSL_CTX_set_min_proto_version(cctx.get(), opt.min_version);
  SSL_CTX_set_max_proto_version(cctx.get(), opt.max_version);
  SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_NONE, nullptr);
  if (opt.max_version < TLS1_2_VERSION) {
    // OpenSSL 3 refuses TLS < 1.2 at security level 1 before sending anything;
    // level 0 lets the client really offer it, so the server is what refuses.
    SSL_CTX_set_security_level(cctx.get(), 0);
    SSL_CTX_set_cipher_list(cctx.get(), "DEFAULT:@SECLEVEL=0");
  }
  if (!opt.tls12_ciphers.empty()) SSL_CTX_set_cipher_list(cctx.get(), opt.tls12_ciphers.c_str());
  if (!opt.alpn.empty()) {
    std::vector<unsigned char> wire;
    for (const auto& p : opt.alpn) {
      wire.push_back(static_cast<unsigned char>(p.size()));
      wire.insert(wire.end(), p.begin(), p.end());
    }
    SSL_CTX_set_alpn_protos(cctx.get(), wire.data(), static_cast<unsigned>(wire.size()));
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> client(SSL_new(cctx.get()), SSL_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> server(SSL_new(server_ctx), SSL_free);
  if (!opt.sni.empty()) SSL_set_tlsext_host_name(client.get(), opt.sni.c_str());
  if (opt.resume != nullptr) SSL_set_session(client.get(), opt.resume);

  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());

  bool client_done = false, server_done = false, failed = false;
  for (int round = 0; round < 50 && !(client_done && server_done) && !failed; ++round) {
    if (!client_done) {
      int rc = SSL_do_handshake(client.get());
      if (rc == 1) {
        client_done = true;
      } else {
        int err = SSL_get_error(client.get(), rc);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) failed = true;
      }
    }
    if (!server_done) {
      int rc = SSL_do_handshake(server.get());
      if (rc == 1) {
        server_done = true;
      } else {
        int err = SSL_get_error(server.get(), rc);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
          failed = true;
          r.server_failed = true;
        }
      }
    }
  }
  ERR_clear_error();
  r.ok = client_done && server_done && !failed;
  if (!r.ok) return r;

  // TLS 1.3 tickets arrive after the handshake: let the client read them.
  char byte;
  SSL_read(client.get(), &byte, 1);
  ERR_clear_error();

  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(client.get(), &alpn, &alpn_len);
  if (alpn != nullptr) r.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  r.server_alpn = std::string(sag::tls::negotiated_alpn(server.get()));
  r.peer_cn = common_name(SSL_get0_peer_certificate(client.get()));
  r.server_cn = common_name(SSL_get_certificate(server.get()));
  r.version = SSL_version(client.get());
  r.cipher = SSL_get_cipher_name(client.get());
  r.reused = SSL_session_reused(client.get()) == 1;
  r.session.reset(SSL_get1_session(client.get()), SSL_SESSION_free);
  // Without a close_notify, SSL_free drops the session from the server's
  // cache and marks the client's copy not resumable.
  SSL_shutdown(client.get());
  SSL_shutdown(server.get());
  ERR_clear_error();
  return r;
}

}  // namespace sag::tls::testing
