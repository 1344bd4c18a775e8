#include "affinity/sticky_cookie.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "affinity/server.h"

namespace sag::affinity {
namespace {

constexpr size_t kIdBytes = 9;  // 72 bits: 12 base64url characters
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(const unsigned char* p, size_t n) {
  std::string out;
  for (size_t i = 0; i + 2 < n; i += 3) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  return out;  // kIdBytes is a multiple of 3: no padding case
}

}  // namespace

std::string StickyCookie::derive_id(std::string_view backend, std::string_view server,
                                    std::string_view secret) {
  // A domain-separated message so a backend "a\0b" can't collide with "a".
  std::string msg = "sag-cookie-id-v1";
  msg += '\0';
  msg += backend;
  msg += '\0';
  msg += server;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (secret.empty()) {
    SHA256(reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), digest);
  } else {
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), digest, &len);
  }
  return base64url(digest, kIdBytes);
}

StickyCookie::StickyCookie(std::string_view backend_name, const config::CookieConfig& config,
                           std::span<Server* const> servers)
    : config_(config), name_(config.name) {
  std::string attrs;
  if (!config.path.empty()) attrs += "; Path=" + config.path;
  if (!config.domain.empty()) attrs += "; Domain=" + config.domain;
  if (config.max_age.count() > 0)
    attrs += "; Max-Age=" + std::to_string(config.max_age.count() / 1000);
  if (config.http_only) attrs += "; HttpOnly";
  attrs += "; SameSite=";
  attrs += config::to_string(config.same_site);
  // SameSite=None requires Secure in browsers; the loader rejects secure:false with it.
  // Browsers drop SameSite=None cookies that aren't Secure, so None implies it.
  const bool force_secure = config.secure == config::SecureFlag::kOn ||
                            config.same_site == config::SameSite::kNone;
  const bool never_secure = config.secure == config::SecureFlag::kOff;
  attributes_secure_ = never_secure ? attrs : attrs + "; Secure";
  attributes_plain_ = force_secure ? attrs + "; Secure" : attrs;
  for (Server* s : servers) by_id_.emplace(s->cookie_id(), s);
  // Older keys still verify (rotation: "the first signs, every one verifies").
  for (size_t k = 1; k < config.secrets.size(); ++k)
    for (Server* s : servers)
      by_id_.emplace(derive_id(backend_name, s->name(), config.secrets[k]), s);
}

CookieLookup StickyCookie::decode(std::string_view value, int64_t /*now*/) const {
  CookieLookup r;
  auto it = by_id_.find(value);
  if (it == by_id_.end()) return r;
  r.status = CookieStatus::kValid;
  r.server = it->second;
  // Signed with an older key: valid, but re-issue it signed with the current one.
  r.refresh = value != r.server->cookie_id();
  return r;
}

void StickyCookie::append_set_cookie(const Server& server, int64_t /*now*/, bool tls,
                                     std::string& out) const {
  out += name_;
  out += '=';
  out += server.cookie_id();
  out += tls ? attributes_secure_ : attributes_plain_;
}

}  // namespace sag::affinity
