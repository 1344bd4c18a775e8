#include "affinity/server.h"

namespace sag::affinity {

Server::Server(uint32_t index, const config::ServerConfig& config, std::string cookie_id)
    : index_(index),
      name_(config.name),
      endpoint_(config.endpoint),
      backup_(config.backup),
      cookie_id_(std::move(cookie_id)),
      weight_(config.weight) {}

}  // namespace sag::affinity
