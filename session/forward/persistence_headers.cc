#include "session/forward/persistence_headers.h"

#include "affinity/affinity_resolver.h"
#include "affinity/balance/stable_hash.h"
#include "affinity/clock.h"
#include "affinity/cookie/cookie_header.h"
#include "affinity/cookie/sticky_cookie.h"
#include "config/base/token_list.h"
#include "config/gateway_config.h"
#include "session/forward/request_checks.h"
#include "session/worker_context.h"

namespace sag::session {
namespace http = boost::beast::http;

PersistenceHeaders::Inputs PersistenceHeaders::read_request(
    Request& req, const affinity::StickyCookie* sticky,
    const config::PersistenceConfig& persistence) {
  // One Cookie field (the usual request) is read where it lies; several
  // are joined first.
  joined_.clear();
  cookies_ = {};
  auto [first, last] = req.equal_range(http::field::cookie);
  if (first != last && std::next(first) == last) {
    cookies_ = first->value();
  } else if (first != last) {
    for (auto it = first; it != last; ++it) {
      if (!joined_.empty()) joined_ += "; ";
      joined_ += it->value();
    }
    cookies_ = joined_;
  }
  Inputs in;
  if (sticky) in.cookie = take_sticky_cookie(req, *sticky);
  if (persistence.learn) {
    if (auto v = affinity::find_cookie(cookies_, persistence.learn->cookie)) {
      learn_value_.assign(*v);
      in.learn = learn_value_;
    }
  }
  return in;
}

std::optional<std::string_view> PersistenceHeaders::take_sticky_cookie(
    Request& req, const affinity::StickyCookie& sticky) {
  const auto& c = sticky.config();
  const std::string_view name =
      c.mode == config::CookieMode::kPrefix ? std::string_view(c.app_cookie) : sticky.name();
  auto value = affinity::find_cookie(cookies_, name);
  if (!value) return std::nullopt;
  switch (c.mode) {
    case config::CookieMode::kInsert: {
      // The usual request: our pair is the whole header, nothing is left.
      const bool only_pair = value->data() == cookies_.data() + name.size() + 1 &&
                             value->data() + value->size() == cookies_.data() + cookies_.size();
      if (only_pair) {
        rest_.clear();
      } else {
        affinity::remove_cookie(cookies_, name, rest_);
      }
      break;
    }
    case config::CookieMode::kPrefix: {
      const size_t tilde = value->find('~');
      if (tilde == std::string_view::npos) return std::nullopt;  // the app's own value
      const std::string app_value(value->substr(tilde + 1));
      affinity::replace_cookie_value(cookies_, name, app_value, rest_);
      break;
    }
    case config::CookieMode::kRewrite:
      return value;
  }
  // Erasing and setting only mark fields dead and append: the view of our
  // value (in the request's field storage, or in joined_) stays valid.
  req.erase(http::field::cookie);
  if (!rest_.empty()) req.set(http::field::cookie, rest_);
  if (c.mode == config::CookieMode::kPrefix) return value->substr(0, value->find('~'));
  return value;
}

uint64_t PersistenceHeaders::request_hash(config::HashSource source, std::string_view name,
                                          const Request& req,
                                          const config::IpAddress& origin) const {
  switch (source) {
    case config::HashSource::kNone:
      return 0;
    case config::HashSource::kSource:
      return affinity::stable_hash64(std::string_view(
          reinterpret_cast<const char*>(origin.bytes.data()), origin.v6 ? 16 : 4));
    case config::HashSource::kHeader:
      return affinity::stable_hash64(req[name]);
    case config::HashSource::kCookie: {
      auto v = affinity::find_cookie(cookies_, name);
      return affinity::stable_hash64(v ? *v : std::string_view{});
    }
    case config::HashSource::kPath: {
      const std::string_view target = req.target();
      return affinity::stable_hash64(target.substr(0, target.find('?')));
    }
  }
  return 0;
}

void PersistenceHeaders::process_set_cookies(ResponseHeader& res,
                                             const config::PersistenceConfig& persistence,
                                             affinity::AffinityResolver& resolver,
                                             const affinity::Clock& clock,
                                             const affinity::Server& server,
                                             const affinity::StickyCookie* sticky,
                                             std::optional<int64_t> created) {
  const bool rewrite = sticky && sticky->config().mode != config::CookieMode::kInsert;
  if (!persistence.learn && !rewrite) return;
  auto [first, last] = res.equal_range(http::field::set_cookie);
  if (first == last) return;
  const int64_t now = clock.unix_seconds();
  bool changed = false;
  set_cookies_.clear();
  for (auto it = first; it != last; ++it) {
    const std::string_view field = it->value();
    auto parsed = affinity::parse_set_cookie(field, now);
    if (!parsed) {
      set_cookies_.emplace_back(field);
      continue;
    }
    if (persistence.learn && parsed->name == persistence.learn->cookie) {
      if (parsed->clears) {
        resolver.forget(parsed->value);
      } else {
        resolver.learn(parsed->value, server, clock.steady_now());
      }
    }
    if (rewrite && !parsed->clears) {
      const auto& c = sticky->config();
      if (c.mode == config::CookieMode::kRewrite && parsed->name == c.name) {
        set_cookies_.push_back(
            affinity::with_cookie_value(field, *parsed, sticky->value_for(server, now, created)));
        changed = true;
        continue;
      }
      if (c.mode == config::CookieMode::kPrefix && parsed->name == c.app_cookie) {
        std::string prefixed = sticky->value_for(server, now, created);
        prefixed += '~';
        prefixed += parsed->value;
        set_cookies_.push_back(affinity::with_cookie_value(field, *parsed, prefixed));
        changed = true;
        continue;
      }
    }
    set_cookies_.emplace_back(field);
  }
  if (!changed) return;
  res.erase(http::field::set_cookie);
  for (const auto& v : set_cookies_) res.insert(http::field::set_cookie, v);
}

void PersistenceHeaders::insert_cookie(ResponseHeader& res, http::verb method,
                                       const affinity::StickyCookie& sticky,
                                       const affinity::Server& server, int64_t issued, bool tls,
                                       std::optional<int64_t> created) {
  set_cookie_.clear();
  sticky.append_set_cookie(server, issued, tls, set_cookie_, created);
  res.insert(http::field::set_cookie, set_cookie_);
  if (shared_cacheable(res, method)) {
    std::string cc(res[http::field::cache_control]);
    cc += cc.empty() ? "no-cache=\"set-cookie\"" : ", no-cache=\"set-cookie\"";
    res.set(http::field::cache_control, cc);
  }
}

bool shared_cacheable(const ResponseHeader& res, http::verb method) {
  if (method != http::verb::get && method != http::verb::head) return false;
  // Without any of the three, nothing makes the response storable.
  if (!res.may_have(http::field::cache_control) && !res.may_have(http::field::expires) &&
      !res.may_have(http::field::last_modified))
    return false;
  // One pass over the fields rather than a lookup for each of the three.
  std::string_view cc;
  bool has_cc = false, has_expires = false, has_last_modified = false;
  for (const auto& f : res) {
    switch (f.name()) {
      case http::field::cache_control:
        if (!has_cc) cc = f.value();  // the first, as res[] gives
        has_cc = true;
        break;
      case http::field::expires: has_expires = true; break;
      case http::field::last_modified: has_last_modified = true; break;
      default: break;
    }
  }
  if (has_cc) {
    using base::has_token;
    if (has_token(cc, "no-store") || has_token(cc, "private")) return false;
    if (has_token(cc, "no-cache")) return false;  // already revalidated every time
    if (has_token(cc, "public") || has_token(cc, "max-age") || has_token(cc, "s-maxage"))
      return true;
  }
  if (has_expires) return true;
  // Heuristic freshness applies to these codes when a validator exists.
  switch (res.result_int()) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
      return has_last_modified;
    default:
      return false;
  }
}

}  // namespace sag::session
