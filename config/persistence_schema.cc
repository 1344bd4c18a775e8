// A backend's `persistence`: the sticky cookie, learned cookies and source
// affinity.
#include <cstring>
#include <string_view>

#include "config/config_schema.h"
#include "config/small_file.h"
#include "config/value_syntax.h"

namespace sag::config {

namespace {

// `secret_file`: one secret a line, trailing blanks dropped; [0] signs.
void read_secrets(SchemaContext& ctx, YamlReader& r, CookieConfig& c) {
  const std::string path = ctx.resolve(c.secret_file);
  std::string why;
  auto text = read_small_file(path, why, 1 << 20);
  if (!text) {
    ctx.error(r.at("secret_file"), "'secret_file': cannot read " + quote_path(path) + ": " + why);
    return;
  }
  std::string_view rest = *text;
  while (!rest.empty()) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    while (!line.empty() && std::strchr(" \t\r\f\v", line.back()) != nullptr) line.remove_suffix(1);
    if (!line.empty()) c.secrets.emplace_back(line);
  }
  if (c.secrets.empty())
    ctx.error(r.at("secret_file"), "'secret_file': " + quote_path(path) + " holds no secret (one a line)");
}

CookieConfig read_cookie(SchemaContext& ctx, YamlReader& persistence, const std::string& owner) {
  YamlReader r = persistence.child("cookie", "'persistence.cookie' of " + owner);
  CookieConfig c;
  if (!r.ok()) return c;
  if (r.read("name", c.name) && !valid_token(c.name))
    ctx.error(r.at("name"), "'name': " + quote(c.name) + " is not a valid cookie name" + kTokenHint);
  using M = CookieMode;
  r.read_enum("mode", c.mode, {{"insert", M::kInsert}, {"rewrite", M::kRewrite}, {"prefix", M::kPrefix}});
  if (r.read("app_cookie", c.app_cookie) && !c.app_cookie.empty() && !valid_token(c.app_cookie))
    ctx.error(r.at("app_cookie"), "'app_cookie': " + quote(c.app_cookie) + " is not a valid cookie name" + kTokenHint);
  if (c.mode == M::kPrefix && c.app_cookie.empty())
    ctx.error(r.at("mode"), "'mode: prefix' needs 'app_cookie' (the server's own session cookie) " + r.in());
  if (r.read("path", c.path) && (c.path.empty() || c.path[0] != '/' || !valid_attribute_value(c.path)))
    ctx.error(r.at("path"), "'path': must start with '/' and hold no spaces, ';', ',' or control characters");
  if (r.read("domain", c.domain) && !valid_attribute_value(c.domain))
    ctx.error(r.at("domain"), "'domain': must hold no spaces, ';', ',' or control characters");
  r.read_enum("secure", c.secure, {{"auto", SecureFlag::kAuto}, {"true", SecureFlag::kOn}, {"false", SecureFlag::kOff}});
  r.read("http_only", c.http_only);
  r.read_enum("same_site", c.same_site, {{"Lax", SameSite::kLax}, {"Strict", SameSite::kStrict}, {"None", SameSite::kNone}});
  if (c.same_site == SameSite::kNone && c.secure == SecureFlag::kOff)
    ctx.error(r.at("same_site"), "'same_site: None' needs a secure cookie (browsers drop SameSite=None without "
                                 "Secure): set secure to auto or true");
  r.read("max_age", c.max_age);
  r.read("max_idle", c.max_idle);
  r.read("max_life", c.max_life);
  if (r.read("secret_file", c.secret_file) && !c.secret_file.empty()) read_secrets(ctx, r, c);
  return c;
}

LearnConfig read_learn(SchemaContext& ctx, YamlReader& persistence, const std::string& owner) {
  YamlReader l = persistence.child("learn", "'persistence.learn' of " + owner);
  LearnConfig lc;
  if (!l.ok()) return lc;
  if (auto c = l.required("cookie")) {
    if (!valid_token(*c)) ctx.error(l.at("cookie"), "'cookie': " + quote(*c) + " is not a valid cookie name" + kTokenHint);
    lc.cookie = *c;
  }
  l.read_positive("ttl", lc.ttl);
  return lc;
}

SourceConfig read_source(YamlReader& persistence, const std::string& owner) {
  YamlReader s = persistence.child("source", "'persistence.source' of " + owner);
  SourceConfig sc;
  if (!s.ok()) return sc;
  s.read_uint("ipv4_mask", sc.ipv4_mask, 0, 32);
  s.read_uint("ipv6_mask", sc.ipv6_mask, 0, 128);
  s.read_positive("ttl", sc.ttl);
  return sc;
}

}  // namespace

PersistenceConfig read_persistence(SchemaContext& ctx, YamlReader& backend) {
  YamlReader r = backend.child("persistence", "'persistence' of " + backend.what());
  PersistenceConfig p;
  if (!r.ok()) return p;
  p.cookie.reset();  // a written section holds exactly what it says
  if (r.has("cookie")) p.cookie = read_cookie(ctx, r, backend.what());
  if (r.has("learn")) p.learn = read_learn(ctx, r, backend.what());
  if (r.has("source")) p.source = read_source(r, backend.what());
  return p;
}

}  // namespace sag::config
