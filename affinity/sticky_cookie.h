// The gateway's persistence cookie for one backend (SPEC §4): derives each
// server's opaque id, decodes a client's value to a server, and formats the
// Set-Cookie line. Built once at config load; immutable and shared by all
// workers afterwards.
//
// Value format: the server id, 12 base64url characters of a SHA-256 (or,
// with a secret, HMAC-SHA256) over the backend and server names. Replicas
// with the same config (in any server order) therefore agree on it.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/gateway_config.h"

namespace sag::affinity {

class Server;

enum class CookieStatus : uint8_t {
  kValid,    // names a server of this backend
  kInvalid,  // malformed, unknown id, or failed verification
  kExpired,  // well-formed but past max_idle / max_life
};

struct CookieLookup {
  CookieStatus status = CookieStatus::kInvalid;
  Server* server = nullptr;  // set when kValid
  bool refresh = false;      // kValid but its dates should be rewritten
};

class StickyCookie {
 public:
  StickyCookie(std::string_view backend_name, const config::CookieConfig& config,
               std::span<Server* const> servers);

  // The id a server gets; `secret` may be empty.
  static std::string derive_id(std::string_view backend, std::string_view server,
                               std::string_view secret);

  const std::string& name() const { return name_; }
  const config::CookieConfig& config() const { return config_; }

  // Never allocates; `now` is Unix seconds (for dated cookies).
  CookieLookup decode(std::string_view value, int64_t now) const;

  // Appends a complete Set-Cookie field value for `server` to `out`.
  // `tls` is whether the client connection is TLS (Secure: auto).
  void append_set_cookie(const Server& server, int64_t now, bool tls, std::string& out) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  const config::CookieConfig config_;
  const std::string name_;
  std::string attributes_plain_;   // "; Path=/; HttpOnly; SameSite=Lax"
  std::string attributes_secure_;  // the same with "; Secure"
  std::unordered_map<std::string, Server*, Hash, std::equal_to<>> by_id_;
};

}  // namespace sag::affinity
