// StickyCookie: server ids, decoding a client's value, Set-Cookie formatting
// (affinity/sticky_cookie.h, SPEC §4).
#include "affinity/sticky_cookie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "affinity/backend.h"
#include "affinity/server.h"

namespace sag::affinity {
namespace {

config::ServerConfig server_config(std::string name, uint16_t port) {
  config::ServerConfig s;
  s.name = std::move(name);
  s.address = "127.0.0.1:" + std::to_string(port);
  auto ep = config::Endpoint::parse(s.address);
  EXPECT_TRUE(ep);
  s.endpoint = ep.value_or(config::Endpoint{});
  return s;
}

config::BackendConfig backend_config(std::string name, std::vector<std::string> servers) {
  config::BackendConfig b;
  b.name = std::move(name);
  uint16_t port = 9001;
  for (auto& s : servers) b.servers.push_back(server_config(s, port++));
  return b;
}

bool is_base64url(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
  });
}

// Formats the Set-Cookie value for `server` of a backend whose cookie config
// is `cc`.
std::string set_cookie(const config::CookieConfig& cc, bool tls, std::string* id = nullptr) {
  auto bc = backend_config("app", {"s1", "s2"});
  bc.persistence.cookie = cc;
  Backend backend(bc);
  EXPECT_NE(backend.cookie(), nullptr);
  if (!backend.cookie()) return {};
  std::string out = "prefix|";
  backend.cookie()->append_set_cookie(*backend.servers()[0], 0, tls, out);
  EXPECT_EQ(out.rfind("prefix|", 0), 0u) << "append_set_cookie must append";
  if (id) *id = backend.servers()[0]->cookie_id();
  return out.substr(7);
}

TEST(StickyCookieId, StableLengthAndAlphabet) {
  const std::string a = StickyCookie::derive_id("app", "s1", "");
  EXPECT_EQ(a, StickyCookie::derive_id("app", "s1", ""));
  EXPECT_EQ(a.size(), 12u);
  EXPECT_TRUE(is_base64url(a)) << a;
  const std::string k = StickyCookie::derive_id("app", "s1", "k1");
  EXPECT_EQ(k, StickyCookie::derive_id("app", "s1", "k1"));
  EXPECT_EQ(k.size(), 12u);
  EXPECT_TRUE(is_base64url(k)) << k;
}

// The id is part of the contract between replicas and across upgrades
// (cookies held by browsers must keep naming the same server): pin it.
// First 9 bytes, base64url, of SHA-256 / HMAC-SHA256("sag-cookie-id-v1\0app\0sN").
TEST(StickyCookieId, KnownValues) {
  EXPECT_EQ(StickyCookie::derive_id("app", "s1", ""), "lFtr0LHD-GXK");
  EXPECT_EQ(StickyCookie::derive_id("app", "s2", ""), "20o5CbI4AfDe");
  EXPECT_EQ(StickyCookie::derive_id("app", "s3", ""), "EAeDiioBD_SU");
  EXPECT_EQ(StickyCookie::derive_id("app", "s1", "k1"), "PRqAQsBZUth3");
  EXPECT_EQ(StickyCookie::derive_id("app", "s2", "k1"), "YsCYJzLkRHaD");
}

TEST(StickyCookieId, DiffersPerBackendServerAndSecret) {
  const std::string base = StickyCookie::derive_id("app", "s1", "");
  EXPECT_NE(base, StickyCookie::derive_id("api", "s1", ""));
  EXPECT_NE(base, StickyCookie::derive_id("app", "s2", ""));
  EXPECT_NE(base, StickyCookie::derive_id("app", "s1", "secret"));
  EXPECT_NE(StickyCookie::derive_id("app", "s1", "secret"),
            StickyCookie::derive_id("app", "s1", "secret2"));
  // Names are separated: moving bytes between backend and server changes it.
  EXPECT_NE(StickyCookie::derive_id("ab", "c", ""), StickyCookie::derive_id("a", "bc", ""));
}

TEST(StickyCookieId, ManyServersAllDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(StickyCookie::derive_id("app", "s" + std::to_string(i), ""));
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(StickyCookie, BackendUsesDerivedIds) {
  Backend backend(backend_config("app", {"s1", "s2", "s3"}));
  ASSERT_EQ(backend.servers().size(), 3u);
  EXPECT_EQ(backend.servers()[0]->cookie_id(), "lFtr0LHD-GXK");
  EXPECT_EQ(backend.servers()[1]->cookie_id(), "20o5CbI4AfDe");
  EXPECT_EQ(backend.servers()[2]->cookie_id(), "EAeDiioBD_SU");
  ASSERT_NE(backend.cookie(), nullptr);
  EXPECT_EQ(backend.cookie()->name(), "SRV");
}

TEST(StickyCookie, BackendWithSecretSignsWithTheFirst) {
  auto bc = backend_config("app", {"s1", "s2"});
  bc.persistence.cookie->secrets = {"k1", "older"};
  Backend backend(bc);
  EXPECT_EQ(backend.servers()[0]->cookie_id(), "PRqAQsBZUth3");
  EXPECT_EQ(backend.servers()[1]->cookie_id(), "YsCYJzLkRHaD");
  // An unsigned id is not valid once a secret is configured.
  auto r = backend.cookie()->decode("lFtr0LHD-GXK", 0);
  EXPECT_EQ(r.status, CookieStatus::kInvalid);
  EXPECT_EQ(r.server, nullptr);
}

TEST(StickyCookie, SecretRotationStillVerifiesOlderKeys) {
  // SPEC §2: secret_file lists keys, "the first signs, every one verifies".
  auto bc = backend_config("app", {"s1", "s2"});
  bc.persistence.cookie->secrets = {"new", "k1"};
  Backend backend(bc);
  const StickyCookie& cookie = *backend.cookie();
  Server* s1 = backend.servers()[0];
  Server* s2 = backend.servers()[1];
  EXPECT_EQ(s1->cookie_id(), StickyCookie::derive_id("app", "s1", "new"));

  auto cur = cookie.decode(s1->cookie_id(), 0);
  EXPECT_EQ(cur.status, CookieStatus::kValid);
  EXPECT_EQ(cur.server, s1);
  EXPECT_FALSE(cur.refresh);

  // Issued before the rotation, with "k1" as the signing key.
  auto old = cookie.decode("YsCYJzLkRHaD", 0);
  EXPECT_EQ(old.status, CookieStatus::kValid);
  EXPECT_EQ(old.server, s2);
  EXPECT_TRUE(old.refresh) << "re-sign with the current key";

  // A key that is no longer listed does not verify.
  auto gone = cookie.decode(StickyCookie::derive_id("app", "s1", "retired"), 0);
  EXPECT_EQ(gone.status, CookieStatus::kInvalid);
  EXPECT_EQ(gone.server, nullptr);
}

TEST(StickyCookie, ReplicasWithDifferentServerOrderAgree) {
  Backend a(backend_config("app", {"s1", "s2", "s3"}));
  Backend b(backend_config("app", {"s3", "s1", "s2"}));
  Backend c(backend_config("app", {"s2", "s3", "s1"}));
  for (const char* name : {"s1", "s2", "s3"}) {
    Server* sa = a.find_server(name);
    Server* sb = b.find_server(name);
    Server* sc = c.find_server(name);
    ASSERT_TRUE(sa && sb && sc) << name;
    EXPECT_EQ(sa->cookie_id(), sb->cookie_id()) << name;
    EXPECT_EQ(sa->cookie_id(), sc->cookie_id()) << name;
    // And a cookie issued by one replica decodes to the same server on another.
    auto rb = b.cookie()->decode(sa->cookie_id(), 0);
    EXPECT_EQ(rb.status, CookieStatus::kValid) << name;
    EXPECT_EQ(rb.server, sb) << name;
    auto rc = c.cookie()->decode(sa->cookie_id(), 0);
    EXPECT_EQ(rc.server, sc) << name;
  }
  // Servers sit at different indexes, yet the ids follow the names.
  EXPECT_NE(a.find_server("s1")->index(), b.find_server("s1")->index());
}

TEST(StickyCookie, DecodeEachServer) {
  Backend backend(backend_config("app", {"s1", "s2", "s3"}));
  const StickyCookie& cookie = *backend.cookie();
  for (Server* s : backend.servers()) {
    auto r = cookie.decode(s->cookie_id(), 1'800'000'000);
    EXPECT_EQ(r.status, CookieStatus::kValid) << s->name();
    EXPECT_EQ(r.server, s) << s->name();
    EXPECT_FALSE(r.refresh) << s->name();
  }
}

TEST(StickyCookie, DecodeRejectsMalformed) {
  Backend backend(backend_config("app", {"s1", "s2"}));
  Backend other(backend_config("api", {"s1", "s2"}));
  const StickyCookie& cookie = *backend.cookie();
  const std::string id = backend.servers()[0]->cookie_id();
  std::string lower = id;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  ASSERT_NE(lower, id);
  for (const std::string& bad :
       {std::string(), std::string("garbage"), std::string("s1"), std::string("0"),
        std::string(12, 'A'), id + "x", id + " ", " " + id, id.substr(0, 11), id.substr(1),
        lower, other.servers()[0]->cookie_id(), other.servers()[1]->cookie_id(),
        std::string(id.data(), 6) + std::string(1, '\0') + id.substr(7),
        id + std::string(1, '\0'), "\"" + id + "\"", id + id}) {
    auto r = cookie.decode(bad, 0);
    EXPECT_EQ(r.status, CookieStatus::kInvalid) << bad;
    EXPECT_EQ(r.server, nullptr) << bad;
    EXPECT_FALSE(r.refresh) << bad;
  }
}

TEST(StickyCookie, DecodeRandomBytesProperty) {
  Backend backend(backend_config("app", {"s1", "s2", "s3"}));
  const StickyCookie& cookie = *backend.cookie();
  std::set<std::string> ids;
  for (Server* s : backend.servers()) ids.insert(s->cookie_id());
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::mt19937 rng(20261121);
  std::uniform_int_distribution<int> len(0, 40);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> b64(0, 63);
  int invalid = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string v;
    if (i % 2 == 0) {
      // Arbitrary bytes of any length.
      v.resize(static_cast<size_t>(len(rng)));
      for (char& c : v) c = static_cast<char>(byte(rng));
    } else {
      // Well-formed looking ids (right length and alphabet).
      v.resize(12);
      for (char& c : v) c = kAlphabet[b64(rng)];
    }
    auto r = cookie.decode(v, 1'800'000'000);
    if (ids.count(v)) {
      EXPECT_EQ(r.status, CookieStatus::kValid);
      continue;
    }
    ++invalid;
    EXPECT_EQ(r.status, CookieStatus::kInvalid) << i;
    EXPECT_EQ(r.server, nullptr) << i;
    if (r.server) {
      auto servers = backend.servers();
      EXPECT_NE(std::find(servers.begin(), servers.end(), r.server), servers.end())
          << "pointer outside the backend";
    }
  }
  EXPECT_EQ(invalid, 10000);
}

TEST(StickyCookie, NameFromConfig) {
  auto bc = backend_config("app", {"s1"});
  bc.persistence.cookie->name = "GWID";
  Backend backend(bc);
  EXPECT_EQ(backend.cookie()->name(), "GWID");
  std::string out;
  backend.cookie()->append_set_cookie(*backend.servers()[0], 0, false, out);
  EXPECT_EQ(out, "GWID=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax");
}

TEST(SetCookie, DefaultOnTls) {
  std::string id;
  const std::string got = set_cookie(config::CookieConfig{}, true, &id);
  EXPECT_EQ(id, "lFtr0LHD-GXK");
  EXPECT_EQ(got, "SRV=" + id + "; Path=/; HttpOnly; SameSite=Lax; Secure");
}

TEST(SetCookie, DefaultOnPlain) {
  EXPECT_EQ(set_cookie(config::CookieConfig{}, false),
            "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax");
}

TEST(SetCookie, SecureOnAlways) {
  config::CookieConfig cc;
  cc.secure = config::SecureFlag::kOn;
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax; Secure");
  EXPECT_EQ(set_cookie(cc, true), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax; Secure");
}

TEST(SetCookie, SecureOffNever) {
  config::CookieConfig cc;
  cc.secure = config::SecureFlag::kOff;
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax");
  EXPECT_EQ(set_cookie(cc, true), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax");
}

TEST(SetCookie, Domain) {
  config::CookieConfig cc;
  cc.domain = "example.com";
  EXPECT_EQ(set_cookie(cc, true),
            "SRV=lFtr0LHD-GXK; Path=/; Domain=example.com; HttpOnly; SameSite=Lax; Secure");
}

TEST(SetCookie, PathFromConfig) {
  config::CookieConfig cc;
  cc.path = "/app";
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/app; HttpOnly; SameSite=Lax");
}

TEST(SetCookie, MaxAge) {
  config::CookieConfig cc;
  cc.max_age = std::chrono::seconds(3600);
  EXPECT_EQ(set_cookie(cc, false),
            "SRV=lFtr0LHD-GXK; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax");
  cc.max_age = config::Duration{0};
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax");
}

TEST(SetCookie, NotHttpOnly) {
  config::CookieConfig cc;
  cc.http_only = false;
  EXPECT_EQ(set_cookie(cc, true), "SRV=lFtr0LHD-GXK; Path=/; SameSite=Lax; Secure");
}

TEST(SetCookie, SameSiteStrictAndNone) {
  config::CookieConfig cc;
  cc.same_site = config::SameSite::kStrict;
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Strict");
  cc.same_site = config::SameSite::kNone;
  EXPECT_EQ(set_cookie(cc, true), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=None; Secure");
}

TEST(SetCookie, EverythingAtOnce) {
  config::CookieConfig cc;
  cc.name = "GW";
  cc.path = "/shop";
  cc.domain = ".example.org";
  cc.max_age = std::chrono::hours(8);
  cc.http_only = false;
  cc.same_site = config::SameSite::kStrict;
  cc.secure = config::SecureFlag::kOn;
  EXPECT_EQ(set_cookie(cc, false),
            "GW=lFtr0LHD-GXK; Path=/shop; Domain=.example.org; Max-Age=28800; SameSite=Strict; "
            "Secure");
}

TEST(StickyCookie, NoCookiePersistence) {
  auto bc = backend_config("app", {"s1"});
  bc.persistence.cookie.reset();
  Backend backend(bc);
  EXPECT_EQ(backend.cookie(), nullptr);
  // Ids are still derived (stable names for the store and admin).
  EXPECT_EQ(backend.servers()[0]->cookie_id(), "lFtr0LHD-GXK");
}

TEST(BackendSet, BuildsEveryBackend) {
  config::GatewayConfig gc;
  gc.backends.push_back(backend_config("app", {"s1", "s2"}));
  gc.backends.push_back(backend_config("api", {"a1"}));
  BackendSet set(gc);
  ASSERT_EQ(set.backends().size(), 2u);
  Backend* app = set.find("app");
  Backend* api = set.find("api");
  ASSERT_NE(app, nullptr);
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(set.find("nope"), nullptr);
  EXPECT_EQ(app->servers().size(), 2u);
  EXPECT_EQ(api->servers().size(), 1u);
  EXPECT_EQ(app->find_server("s2")->index(), 1u);
  EXPECT_EQ(app->find_server("s2")->endpoint().port, 9002);
  EXPECT_EQ(app->find_server("a1"), nullptr);
  EXPECT_EQ(api->servers()[0]->cookie_id(), StickyCookie::derive_id("api", "a1", ""));
  // An id of one backend is unknown to the other.
  EXPECT_EQ(api->cookie()->decode(app->servers()[0]->cookie_id(), 0).status,
            CookieStatus::kInvalid);
}

}  // namespace
}  // namespace sag::affinity
