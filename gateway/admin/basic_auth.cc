#include "gateway/admin/basic_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>

#include "config/base/base64.h"
#include "config/base/token_list.h"

namespace sag::gateway::admin {
namespace {

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> d{};
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), d.data(), &n, EVP_sha256(), nullptr);
  return d;
}

using base::is_blank;

}  // namespace

std::optional<std::string> basic_credentials(std::string_view authorization) {
  std::string_view v = authorization;
  while (!v.empty() && is_blank(v.front())) v.remove_prefix(1);
  static constexpr std::string_view kScheme = "basic";
  if (v.size() <= kScheme.size()) return std::nullopt;
  for (size_t k = 0; k < kScheme.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(v[k])) != kScheme[k]) return std::nullopt;
  v.remove_prefix(kScheme.size());
  if (!is_blank(v.front())) return std::nullopt;
  v = base::trim_blanks(v);
  if (v.empty()) return std::nullopt;
  auto decoded = base::base64_decode(v);
  if (!decoded || decoded->find(':') == std::string::npos) return std::nullopt;
  return decoded;
}

BasicAuth::BasicAuth(std::string_view user, std::string_view password) {
  if (user.empty() || password.empty()) return;
  required_ = true;
  std::string credentials(user);
  credentials += ':';
  credentials += password;
  expected_digest_ = sha256(credentials);
}

bool BasicAuth::authorized(std::string_view authorization) const {
  if (!required_) return true;
  const auto credentials = basic_credentials(authorization);
  if (!credentials) return false;
  // Digests of equal length compared in constant time: neither the length
  // nor the content of the expected credentials leaks through timing.
  const auto got = sha256(*credentials);
  return CRYPTO_memcmp(got.data(), expected_digest_.data(), got.size()) == 0;
}

}  // namespace sag::gateway::admin
