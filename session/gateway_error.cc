#include "session/gateway_error.h"

#include <array>
#include <cstddef>

namespace sag::session {
namespace {

using T = Termination;

// Indexed by GatewayError; the static_assert below keeps them in step.
constexpr std::array<GatewayErrorInfo, 22> kTable = {{
    {400, "malformed request", T::kBadRequest},
    {400, "bad request target", T::kBadRequest},
    {400, "bad host", T::kBadRequest},
    {400, "missing host", T::kBadRequest},
    {400, "authority and host disagree", T::kBadRequest},
    {400, "malformed request body", T::kBadRequest},
    {414, "request line too long", T::kBadRequest},
    {431, "request headers too large", T::kBadRequest},
    {431, "chunked trailers too large", T::kBadRequest},
    {413, "request body too large", T::kBadRequest},
    {501, "unknown transfer coding", T::kBadRequest},
    {405, "CONNECT is not supported", T::kBadRequest},
    {408, "request head not received in time", T::kClientTimeout},
    {408, "request body not received in time", T::kClientTimeout},
    {404, "no route for this host and path", T::kNoRoute},
    {308, "redirecting to https", T::kRedirect},
    {503, "no server available", T::kNoServer},
    {503, "no server available", T::kConnectFailed},
    {504, "server timed out", T::kServerTimeout},
    {502, "server failed", T::kServerClose},
    {502, "server sent an invalid response", T::kBadResponse},
    {502, "server switched protocols unasked", T::kBadResponse},
}};
static_assert(kTable.size() == static_cast<std::size_t>(GatewayError::kUnaskedUpgrade) + 1);

}  // namespace

const char* to_string(Termination t) {
  switch (t) {
    case T::kOk: return "ok";
    case T::kClientClose: return "client-close";
    case T::kClientTimeout: return "client-timeout";
    case T::kBadRequest: return "bad-request";
    case T::kNoRoute: return "no-route";
    case T::kRedirect: return "redirect";
    case T::kNoServer: return "no-server";
    case T::kConnectFailed: return "connect-failed";
    case T::kServerTimeout: return "server-timeout";
    case T::kServerClose: return "server-close";
    case T::kBadResponse: return "bad-response";
    case T::kShutdown: return "shutdown";
  }
  return "-";
}

const GatewayErrorInfo& info(GatewayError e) { return kTable[static_cast<std::size_t>(e)]; }

GatewayError head_error(unsigned status) {
  switch (status) {
    case 414: return GatewayError::kUriTooLong;
    case 431: return GatewayError::kHeadersTooLarge;
    case 501: return GatewayError::kUnknownCoding;
    default: return GatewayError::kMalformedRequest;
  }
}

}  // namespace sag::session
