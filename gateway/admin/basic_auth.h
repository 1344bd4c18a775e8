// Basic authentication for the admin listener (admin.user/admin.password).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace sag::gateway::admin {

// The decoded "user:password" of an `Authorization: Basic ...` value
// (scheme case-insensitive); nullopt when it isn't one.
std::optional<std::string> basic_credentials(std::string_view authorization);

class BasicAuth {
 public:
  // Auth is required when both user and password are non-empty.
  BasicAuth(std::string_view user, std::string_view password);

  bool required() const { return required_; }
  // Whether a request with this Authorization header (empty when absent)
  // may pass: always when auth is not required.
  bool authorized(std::string_view authorization) const;

 private:
  bool required_ = false;
  std::array<unsigned char, 32> expected_digest_{};  // SHA-256 of "user:password"
};

}  // namespace sag::gateway::admin
