// Builds config generations (session/generation.h; docs/behaviour.md#reload):
// a TLS context per TLS listener on the process's one ticket key ring (so
// resumption works across reloads and replicas), the routers, the access
// log, and the backends, carried over from the generation being replaced
// (servers and listeners keep their ids by name and address).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/gateway_config.h"
#include "session/generation.h"

namespace sag::tls {
class TicketKeys;
}

namespace sag::gateway {

// ALPN protocols this build can speak on a TLS listener.
const std::vector<std::string>& supported_alpn();

class GenerationBuilder {
 public:
  explicit GenerationBuilder(std::shared_ptr<tls::TicketKeys> ticket_keys)
      : ticket_keys_(std::move(ticket_keys)) {}

  // Null with `errors` set (each naming its listener or the access log) when
  // a certificate or key can't be loaded or the access log can't be opened.
  // Reads every file again, changed or not. `previous`: the generation it
  // will replace, or null at start. Nothing of `previous` changes (see
  // BackendSet::commit for the swap).
  std::shared_ptr<session::Generation> build(std::shared_ptr<const config::GatewayConfig> config,
                                             const session::Generation* previous,
                                             std::vector<std::string>& errors) const;

 private:
  std::shared_ptr<tls::TicketKeys> ticket_keys_;
};

}  // namespace sag::gateway
