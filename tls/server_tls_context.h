// Server-side TLS for one listener: certificates, SNI, ALPN, versions, tickets.
//
// Built once at start-up (and again on reload) from a TlsConfig; afterwards
// immutable and shared by every worker thread (OpenSSL's SSL_CTX is safe for
// concurrent handshakes). One SSL_CTX per certificate; the servername callback
// moves a connection to the certificate matching its SNI (exact SAN/CN first,
// then wildcard "*.example.com", else the first certificate).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "config/gateway_config.h"
#include "tls/ticket_keys.h"

namespace sag::tls {

class ServerTlsContext {
 public:
  // nullptr with `errors` filled (each naming the file) when a certificate or
  // key is missing, unreadable, or the key does not match the certificate.
  // `supported_alpn` lists the protocols this build can speak (e.g. only
  // "http/1.1" until HTTP/2 exists); offered = config.alpn ∩ supported_alpn,
  // in config order.
  // `ticket_keys`: with `config.session_tickets`, every SSL_CTX encrypts and
  // decrypts tickets with this ring (shared with other contexts, and through
  // it with other replicas); each SSL_CTX keeps a reference. nullptr: each
  // SSL_CTX uses OpenSSL's own random per-context keys. Ignored (tickets
  // off) without `session_tickets`.
  static std::shared_ptr<ServerTlsContext> create(const config::TlsConfig& config,
                                                  const std::vector<std::string>& supported_alpn,
                                                  std::vector<std::string>& errors,
                                                  std::shared_ptr<TicketKeys> ticket_keys = nullptr);
  ~ServerTlsContext();

  // The context new connections start from (the default certificate).
  // Its callbacks refer to this object: every SSL made from it must be freed
  // before this object is (a connection keeps the shared_ptr).
  boost::asio::ssl::context& asio_context();

  // Name of the certificate (file stem) that would serve `server_name`;
  // for tests and logs.
  std::string_view certificate_for(std::string_view server_name) const;

 private:
  ServerTlsContext();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The protocol ALPN selected on a finished handshake ("" when none).
std::string_view negotiated_alpn(const SSL* ssl);

}  // namespace sag::tls
