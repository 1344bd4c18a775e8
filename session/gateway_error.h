// The gateway's one vocabulary for how an exchange ended: every answer the
// gateway gives itself is a GatewayError, and one table gives each its
// status, the short body text naming the reason, and the termination code
// the access log shows (docs/behaviour.md lists the words). Exchanges the
// server answered end with a Termination too (ok, or how they were cut).
#pragma once

#include <cstdint>

namespace sag::session {

// How an exchange ended: the access log's TERMINATION field. TCP mode uses
// the same words where they apply (client-close, server-close,
// connect-failed, shutdown).
enum class Termination : uint8_t {
  kOk,             // "ok": the response went out whole
  kClientClose,    // "client-close": the client closed or reset mid-exchange
  kClientTimeout,  // "client-timeout": the client sent or read too slowly
  kBadRequest,     // "bad-request": refused as invalid or too large (4xx, 501)
  kNoRoute,        // "no-route": no backend for the host and path (404)
  kRedirect,       // "redirect": the listener only redirects (308)
  kNoServer,       // "no-server": no server usable (503)
  kConnectFailed,  // "connect-failed": no server could be reached (503)
  kServerTimeout,  // "server-timeout": the server took the request, no answer (504)
  kServerClose,    // "server-close": the server closed or reset before the response ended (502)
  kBadResponse,    // "bad-response": the server's response was not valid HTTP (502)
  kShutdown,       // "shutdown": the gateway stopped before the exchange ended
};

const char* to_string(Termination t);

enum class GatewayError : uint8_t {
  // The client's request.
  kMalformedRequest,   // 400
  kBadTarget,          // 400
  kBadHost,            // 400
  kMissingHost,        // 400
  kAuthorityMismatch,  // 400 (HTTP/2 :authority vs Host)
  kMalformedBody,      // 400
  kUriTooLong,         // 414
  kHeadersTooLarge,    // 431
  kTrailersTooLarge,   // 431
  kBodyTooLarge,       // 413
  kUnknownCoding,      // 501
  kMethodNotAllowed,   // 405 (CONNECT)
  kHeadTimeout,        // 408
  kBodyTimeout,        // 408
  // Routing and servers.
  kNoRoute,            // 404
  kRedirect,           // 308
  kNoServer,           // 503
  kConnectFailed,      // 503
  kServerTimeout,      // 504
  kServerFailed,       // 502: closed or reset before its response was whole
  kBadResponse,        // 502: not valid HTTP
  kUnaskedUpgrade,     // 502: 101 to a request that asked none
};

struct GatewayErrorInfo {
  unsigned status;
  const char* text;  // the answer's body (a line), when the caller gives no detail
  Termination termination;
};

const GatewayErrorInfo& info(GatewayError e);

// The error for a request-head scan's status (400, 414, 431, 501).
GatewayError head_error(unsigned status);

}  // namespace sag::session
