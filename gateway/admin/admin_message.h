// What the admin listener's transport hands to AdminHandler and back: an
// HTTP request and response reduced to what the admin pages need.
#pragma once

#include <string>
#include <string_view>

namespace sag::gateway {

struct AdminRequest {
  std::string_view method;         // "GET", "PUT", ...
  std::string_view target;         // origin-form, query allowed (ignored)
  std::string_view authorization;  // the Authorization header, empty if absent
  std::string_view body;
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  std::string allow;            // for 405: the Allow header
  bool challenge = false;       // for 401: WWW-Authenticate: Basic realm="sag"
  bool head = false;            // answer to HEAD: send the head only
};

namespace admin {
inline constexpr const char* kJsonType = "application/json";
inline constexpr const char* kTextType = "text/plain; charset=utf-8";
inline constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr const char* kHtmlType = "text/html; charset=utf-8";
}  // namespace admin

}  // namespace sag::gateway
