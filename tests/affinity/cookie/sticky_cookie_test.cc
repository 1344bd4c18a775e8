// StickyCookie: server ids, decoding a client's value, Set-Cookie formatting
// (affinity/cookie/sticky_cookie.h, docs/behaviour.md#persistence).
#include "affinity/cookie/sticky_cookie.h"

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "affinity/model/backend.h"
#include "affinity/model/server.h"

// Counts C++ allocations while g_count_allocations is set (any thread), for
// StickyCookieDated.DecodeDoesNotAllocate.
namespace {
std::atomic<bool> g_count_allocations{false};
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

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

// The documented default cookie is dated (max_idle 30m, max_life 8h); tests of
// the bare-id format start from an undated one and add dates explicitly.
config::CookieConfig undated() {
  config::CookieConfig c;
  c.max_idle = config::Duration(0);
  c.max_life = config::Duration(0);
  return c;
}

config::BackendConfig backend_config(std::string name, std::vector<std::string> servers) {
  config::BackendConfig b;
  b.name = std::move(name);
  uint16_t port = 9001;
  for (auto& s : servers) b.servers.push_back(server_config(s, port++));
  b.persistence.cookie = undated();
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
  // docs/configuration.md: secret_file lists keys, "the first signs, every one verifies".
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

// The id table hashes an id by its first eight characters: values that
// share them with a server's id, in any bucket, are still compared whole.
TEST(StickyCookie, AValueSharingAnIdsFirstEightCharsIsInvalid) {
  Backend backend(backend_config("app", {"s1", "s2", "s3"}));
  const StickyCookie& cookie = *backend.cookie();
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (Server* s : backend.servers()) {
    const std::string id = s->cookie_id();
    ASSERT_EQ(id.size(), 12u);
    for (size_t i = 8; i < 12; ++i) {
      for (char c : std::string_view(kAlphabet)) {
        std::string v = id;
        v[i] = c;
        if (v == id) continue;
        auto r = cookie.decode(v, 1'800'000'000);
        EXPECT_EQ(r.status, CookieStatus::kInvalid) << v;
        EXPECT_EQ(r.server, nullptr) << v;
      }
    }
    EXPECT_EQ(cookie.decode(id, 1'800'000'000).server, s);
  }
}

// Many servers under three keys fill the id table with runs of neighbours:
// every id of every key finds its own server (re-signed when not the first
// key), and no value one character off any id finds one.
TEST(StickyCookie, EveryIdOfManyServersAndKeysFindsItsServer) {
  std::vector<std::string> names;
  for (int i = 0; i < 150; ++i) names.push_back("srv" + std::to_string(i));
  auto bc = backend_config("app", names);
  const std::vector<std::string> keys = {"now", "before", "long-ago"};
  bc.persistence.cookie->secrets = keys;
  Backend backend(bc);
  const StickyCookie& cookie = *backend.cookie();
  ASSERT_EQ(backend.servers().size(), names.size());
  for (Server* s : backend.servers()) {
    for (size_t k = 0; k < keys.size(); ++k) {
      const std::string id = StickyCookie::derive_id("app", s->name(), keys[k]);
      const auto r = cookie.decode(id, 0);
      ASSERT_EQ(r.status, CookieStatus::kValid) << s->name() << " key " << k;
      EXPECT_EQ(r.server, s);
      EXPECT_EQ(r.refresh, k != 0);
      for (size_t at = 0; at < id.size(); ++at) {
        std::string off = id;
        off[at] = off[at] == 'A' ? 'B' : 'A';
        EXPECT_EQ(cookie.decode(off, 0).server, nullptr) << off;
      }
    }
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
  const std::string got = set_cookie(undated(), true, &id);
  EXPECT_EQ(id, "lFtr0LHD-GXK");
  EXPECT_EQ(got, "SRV=" + id + "; Path=/; HttpOnly; SameSite=Lax; Secure");
}

TEST(SetCookie, DefaultOnPlain) {
  EXPECT_EQ(set_cookie(undated(), false),
            "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax");
}

TEST(SetCookie, SecureOnAlways) {
  config::CookieConfig cc = undated();
  cc.secure = config::SecureFlag::kOn;
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax; Secure");
  EXPECT_EQ(set_cookie(cc, true), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax; Secure");
}

TEST(SetCookie, SecureOffNever) {
  config::CookieConfig cc = undated();
  cc.secure = config::SecureFlag::kOff;
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax");
  EXPECT_EQ(set_cookie(cc, true), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax");
}

TEST(SetCookie, Domain) {
  config::CookieConfig cc = undated();
  cc.domain = "example.com";
  EXPECT_EQ(set_cookie(cc, true),
            "SRV=lFtr0LHD-GXK; Path=/; Domain=example.com; HttpOnly; SameSite=Lax; Secure");
}

TEST(SetCookie, PathFromConfig) {
  config::CookieConfig cc = undated();
  cc.path = "/app";
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/app; HttpOnly; SameSite=Lax");
}

TEST(SetCookie, MaxAge) {
  config::CookieConfig cc = undated();
  cc.max_age = std::chrono::seconds(3600);
  EXPECT_EQ(set_cookie(cc, false),
            "SRV=lFtr0LHD-GXK; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax");
  cc.max_age = config::Duration{0};
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Lax");
}

TEST(SetCookie, NotHttpOnly) {
  config::CookieConfig cc = undated();
  cc.http_only = false;
  EXPECT_EQ(set_cookie(cc, true), "SRV=lFtr0LHD-GXK; Path=/; SameSite=Lax; Secure");
}

TEST(SetCookie, SameSiteStrictAndNone) {
  config::CookieConfig cc = undated();
  cc.same_site = config::SameSite::kStrict;
  EXPECT_EQ(set_cookie(cc, false), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=Strict");
  cc.same_site = config::SameSite::kNone;
  EXPECT_EQ(set_cookie(cc, true), "SRV=lFtr0LHD-GXK; Path=/; HttpOnly; SameSite=None; Secure");
}

TEST(SetCookie, EverythingAtOnce) {
  config::CookieConfig cc = undated();
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

// ---------------------------------------------------------------------------
// Dated and signed values (max_idle / max_life, secrets): see the format in
// affinity/cookie/sticky_cookie.h.

constexpr int64_t kT = 1'800'000'000;  // an arbitrary "now", Unix seconds

// A backend "app" with servers s1..s3 and the given cookie dates / secrets.
std::unique_ptr<Backend> dated_backend(int64_t max_idle_s, int64_t max_life_s,
                                       std::vector<std::string> secrets = {}) {
  auto bc = backend_config("app", {"s1", "s2", "s3"});
  bc.persistence.cookie->max_idle = std::chrono::seconds(max_idle_s);
  bc.persistence.cookie->max_life = std::chrono::seconds(max_life_s);
  bc.persistence.cookie->secrets = std::move(secrets);
  return std::make_unique<Backend>(bc);
}

bool is_cookie_value_alphabet(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
  });
}

std::string b64url(const unsigned char* p, size_t n) {
  static constexpr char kA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | p[i];
    bits += 8;
    while (bits >= 6) {
      out += kA[(acc >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += kA[(acc << (6 - bits)) & 63];
  return out;
}

// 36-bit big-endian date, 6 base64url chars.
std::string date36(int64_t t) {
  static constexpr char kA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (int i = 5; i >= 0; --i) out += kA[(static_cast<uint64_t>(t) >> (6 * i)) & 63];
  return out;
}

// An independent HMAC-SHA256 (OpenSSL's one-shot) of `msg`, as the cookie's
// 22-char MAC field.
std::string mac22(const std::string& key, const std::string& msg) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), d, &len);
  return b64url(d, 16);
}

TEST(StickyCookieDated, KnownValueWithoutSecret) {
  auto b = dated_backend(1800, 0);
  const StickyCookie& c = *b->cookie();
  EXPECT_TRUE(c.dated());
  // last-seen kT + 100, created kT.
  const std::string v = c.value_for(*b->servers()[0], kT + 100, kT);
  EXPECT_EQ(v, "lFtr0LHD-GXK.BrSdJk.BrSdIA");
  EXPECT_EQ(v, "lFtr0LHD-GXK." + date36(kT + 100) + "." + date36(kT));
  auto r = c.decode(v, kT + 100);
  EXPECT_EQ(r.status, CookieStatus::kValid);
  EXPECT_EQ(r.server, b->servers()[0]);
  EXPECT_EQ(r.created, kT);
  EXPECT_EQ(r.last_seen, kT + 100);
  EXPECT_FALSE(r.refresh);
}

// A byte outside the base64url alphabet in any digit of either date
// makes the value unreadable; every digit weighs as date36 writes it.
TEST(StickyCookieDated, EveryDateDigitIsCheckedAndWeighed) {
  auto b = dated_backend(1800, 0);
  const StickyCookie& c = *b->cookie();
  const std::string v = c.value_for(*b->servers()[0], kT + 100, kT);
  for (size_t at : {13u, 14u, 15u, 16u, 17u, 18u, 20u, 21u, 22u, 23u, 24u, 25u}) {
    for (char bad : {'!', '=', '+', '/', '.', '\0', '\x80'}) {
      std::string w = v;
      w[at] = bad;
      EXPECT_EQ(c.decode(w, kT + 100).status, CookieStatus::kInvalid) << at << " " << int(bad);
    }
  }
  for (int64_t created : {kT - 1, kT - 64, kT - 4096, kT - 262144, kT - 16777216}) {
    const std::string w = c.value_for(*b->servers()[0], kT + 100, created);
    auto r = c.decode(w, kT + 100);
    ASSERT_EQ(r.status, CookieStatus::kValid) << w;
    EXPECT_EQ(r.created, created) << w;
    EXPECT_EQ(r.last_seen, kT + 100) << w;
  }
}

TEST(StickyCookieDated, KnownValueWithSecretIsHmacOverTheValue) {
  auto b = dated_backend(1800, 0, {"k1"});
  const StickyCookie& c = *b->cookie();
  const std::string v = c.value_for(*b->servers()[0], kT + 100, kT);
  const std::string body = "PRqAQsBZUth3." + date36(kT + 100) + "." + date36(kT);
  EXPECT_EQ(v, body + "." + mac22("k1", body));
  EXPECT_EQ(v, "PRqAQsBZUth3.BrSdJk.BrSdIA.ORW2SAxv4hUrETYU8Xqp-g");
  EXPECT_EQ(c.decode(v, kT + 100).status, CookieStatus::kValid);
}

TEST(StickyCookieDated, LongSecretIsHashedFirstLikeHmac) {
  const std::string long_key(200, 'k');
  auto b = dated_backend(1800, 0, {long_key});
  const StickyCookie& c = *b->cookie();
  const std::string v = c.value_for(*b->servers()[1], kT, kT);
  const std::string body = b->servers()[1]->cookie_id() + "." + date36(kT) + "." + date36(kT);
  EXPECT_EQ(v, body + "." + mac22(long_key, body));
  EXPECT_EQ(c.decode(v, kT).server, b->servers()[1]);
}

TEST(StickyCookieDated, ShapesAndCookieOctets) {
  for (int secret = 0; secret < 2; ++secret) {
    for (auto [idle, life] : {std::pair{0, 0}, {1800, 0}, {0, 28800}, {1800, 28800}}) {
      auto b = dated_backend(idle, life, secret ? std::vector<std::string>{"k1"}
                                                : std::vector<std::string>{});
      const StickyCookie& c = *b->cookie();
      const bool dated = idle > 0 || life > 0;
      EXPECT_EQ(c.dated(), dated);
      for (Server* s : b->servers()) {
        const std::string v = c.value_for(*s, kT);
        EXPECT_TRUE(is_cookie_value_alphabet(v)) << v;
        EXPECT_EQ(v.substr(0, 12), s->cookie_id());
        EXPECT_EQ(v.size(), !dated ? 12u : secret ? 49u : 26u) << v;
        auto r = c.decode(v, kT);
        EXPECT_EQ(r.status, CookieStatus::kValid) << v;
        EXPECT_EQ(r.server, s) << v;
        EXPECT_FALSE(r.refresh) << v;
        EXPECT_EQ(r.created.has_value(), dated);
        EXPECT_EQ(r.last_seen.has_value(), dated);
        if (dated) {
          EXPECT_EQ(*r.created, kT);
          EXPECT_EQ(*r.last_seen, kT);
        }
        // append_set_cookie writes the same value.
        std::string line;
        c.append_set_cookie(*s, kT, false, line);
        EXPECT_EQ(line, "SRV=" + v + "; Path=/; HttpOnly; SameSite=Lax");
      }
    }
  }
}

TEST(StickyCookieDated, UndatedIgnoresDates) {
  auto b = dated_backend(0, 0, {"k1"});
  const StickyCookie& c = *b->cookie();
  EXPECT_EQ(c.value_for(*b->servers()[0], kT, kT - 5), "PRqAQsBZUth3");
  std::string line;
  c.append_set_cookie(*b->servers()[0], kT, false, line, kT - 5);
  EXPECT_EQ(line, "SRV=PRqAQsBZUth3; Path=/; HttpOnly; SameSite=Lax");
  auto r = c.decode("PRqAQsBZUth3", kT);
  EXPECT_EQ(r.status, CookieStatus::kValid);
  EXPECT_FALSE(r.created.has_value());
  EXPECT_FALSE(r.last_seen.has_value());
}

TEST(StickyCookieDated, IdleExpiryAtTheExactSecond) {
  for (auto secrets : {std::vector<std::string>{}, std::vector<std::string>{"k1"}}) {
    auto b = dated_backend(1800, 0, secrets);
    const StickyCookie& c = *b->cookie();
    const std::string v = c.value_for(*b->servers()[2], kT);
    auto at_limit = c.decode(v, kT + 1800);
    EXPECT_EQ(at_limit.status, CookieStatus::kValid);
    EXPECT_EQ(at_limit.server, b->servers()[2]);
    auto past = c.decode(v, kT + 1801);
    EXPECT_EQ(past.status, CookieStatus::kExpired);
    EXPECT_EQ(past.server, nullptr);
    EXPECT_FALSE(past.refresh);
    EXPECT_EQ(c.decode(v, kT + 100000).status, CookieStatus::kExpired);
  }
}

TEST(StickyCookieDated, SubSecondMaxIdleComparesInMilliseconds) {
  auto bc = backend_config("app", {"s1"});
  bc.persistence.cookie->max_idle = std::chrono::milliseconds(1500);
  Backend b(bc);
  const std::string v = b.cookie()->value_for(*b.servers()[0], kT);
  EXPECT_EQ(b.cookie()->decode(v, kT + 1).status, CookieStatus::kValid);
  EXPECT_EQ(b.cookie()->decode(v, kT + 2).status, CookieStatus::kExpired);
}

TEST(StickyCookieDated, LifeExpiryAtTheExactSecondDespiteRefreshes) {
  for (auto secrets : {std::vector<std::string>{}, std::vector<std::string>{"k1"}}) {
    auto b = dated_backend(1800, 28800, secrets);
    const StickyCookie& c = *b->cookie();
    Server& s = *b->servers()[0];
    std::string v = c.value_for(s, kT);
    // Keep it busy: re-issued every 1000 s, as the gateway does on refresh.
    int64_t t = kT;
    while (t + 1000 <= kT + 28800) {
      t += 1000;
      auto r = c.decode(v, t);
      ASSERT_EQ(r.status, CookieStatus::kValid) << t - kT;
      ASSERT_TRUE(r.refresh) << t - kT;
      ASSERT_EQ(r.created, kT) << t - kT;
      v = c.value_for(s, t, r.created);
    }
    auto at_limit = c.decode(v, kT + 28800);
    EXPECT_EQ(at_limit.status, CookieStatus::kValid);
    EXPECT_EQ(at_limit.created, kT);
    auto past = c.decode(v, kT + 28801);
    EXPECT_EQ(past.status, CookieStatus::kExpired);
    EXPECT_EQ(past.server, nullptr);
  }
}

TEST(StickyCookieDated, LifeOnly) {
  auto b = dated_backend(0, 3600, {"k1"});
  const StickyCookie& c = *b->cookie();
  const std::string v = c.value_for(*b->servers()[0], kT);
  auto r = c.decode(v, kT + 3600);
  EXPECT_EQ(r.status, CookieStatus::kValid);
  // No max_idle: the last-seen date never needs refreshing.
  EXPECT_FALSE(r.refresh);
  EXPECT_EQ(c.decode(v, kT + 3601).status, CookieStatus::kExpired);
}

TEST(StickyCookieDated, RefreshOnlyAfterAQuarterOfMaxIdleAtMost60s) {
  struct Case {
    int64_t max_idle_ms;
    int64_t refresh_after_s;
  };
  for (Case k : {Case{30 * 60 * 1000, 60},  // quarter = 450 s, capped at 60
                 Case{10 * 60 * 1000, 60},  // quarter = 150 s, capped
                 Case{4 * 60 * 1000, 60},   // quarter = exactly 60 s
                 Case{2 * 60 * 1000, 30},   // quarter = 30 s
                 Case{10 * 1000, 3},        // quarter = 2.5 s: has passed at 3 s
                 Case{4 * 1000, 1},         // quarter = 1 s
                 Case{1000, 1}}) {          // quarter = 0.25 s: at 1 s
    for (auto secrets : {std::vector<std::string>{}, std::vector<std::string>{"k1"}}) {
      auto bc = backend_config("app", {"s1"});
      bc.persistence.cookie->max_idle = std::chrono::milliseconds(k.max_idle_ms);
      bc.persistence.cookie->secrets = secrets;
      Backend b(bc);
      const StickyCookie& c = *b.cookie();
      const std::string v = c.value_for(*b.servers()[0], kT);
      for (int64_t dt = 0; dt < k.refresh_after_s; ++dt) {
        auto r = c.decode(v, kT + dt);
        EXPECT_EQ(r.status, CookieStatus::kValid) << k.max_idle_ms << " " << dt;
        EXPECT_FALSE(r.refresh) << k.max_idle_ms << " " << dt;
      }
      auto due = c.decode(v, kT + k.refresh_after_s);
      EXPECT_EQ(due.status, CookieStatus::kValid) << k.max_idle_ms;
      EXPECT_TRUE(due.refresh) << k.max_idle_ms;
      // A cookie dated a little in the future (another replica's clock) is
      // valid and not refreshed.
      auto ahead = c.decode(v, kT - 30);
      EXPECT_EQ(ahead.status, CookieStatus::kValid);
      EXPECT_FALSE(ahead.refresh);
    }
  }
}

TEST(StickyCookieDated, CreatedPreservedAcrossRefresh) {
  auto b = dated_backend(1800, 28800, {"k1"});
  const StickyCookie& c = *b->cookie();
  Server& s = *b->servers()[1];
  const std::string v1 = c.value_for(s, kT);
  auto r1 = c.decode(v1, kT + 120);
  ASSERT_EQ(r1.status, CookieStatus::kValid);
  ASSERT_TRUE(r1.refresh);
  ASSERT_EQ(r1.created, kT);
  ASSERT_EQ(r1.last_seen, kT);

  std::string line;
  c.append_set_cookie(s, kT + 120, true, line, r1.created);
  ASSERT_EQ(line.rfind("SRV=", 0), 0u);
  const std::string v2 = line.substr(4, line.find(';') - 4);
  EXPECT_EQ(v2, c.value_for(s, kT + 120, kT));
  auto r2 = c.decode(v2, kT + 150);
  EXPECT_EQ(r2.status, CookieStatus::kValid);
  EXPECT_EQ(r2.server, &s);
  EXPECT_EQ(r2.created, kT) << "the creation date survives the refresh";
  EXPECT_EQ(r2.last_seen, kT + 120);
  EXPECT_FALSE(r2.refresh);

  // Without `created` the cookie is a fresh one.
  auto fresh = c.decode(c.value_for(s, kT + 120), kT + 120);
  EXPECT_EQ(fresh.created, kT + 120);
  // A creation date after `now` (skewed replica) is clamped to `now`.
  auto clamped = c.decode(c.value_for(s, kT, kT + 30), kT);
  EXPECT_EQ(clamped.status, CookieStatus::kValid);
  EXPECT_EQ(clamped.created, kT);
}

TEST(StickyCookieDated, EveryByteFlippedIsInvalid) {
  auto b = dated_backend(1800, 28800, {"k1", "k0"});
  const StickyCookie& c = *b->cookie();
  const std::string v = c.value_for(*b->servers()[0], kT);
  ASSERT_EQ(v.size(), 49u);
  ASSERT_EQ(c.decode(v, kT).status, CookieStatus::kValid);
  for (size_t i = 0; i < v.size(); ++i) {
    for (int x = 0; x < 256; ++x) {
      std::string t = v;
      t[i] = static_cast<char>(x);
      if (t == v) continue;
      auto r = c.decode(t, kT);
      ASSERT_EQ(r.status, CookieStatus::kInvalid) << "byte " << i << " = " << x;
      ASSERT_EQ(r.server, nullptr);
      ASSERT_FALSE(r.refresh);
      ASSERT_FALSE(r.created.has_value());
    }
  }
}

TEST(StickyCookieDated, UnsignedTamperingOfIdOrSeparatorsIsInvalid) {
  auto b = dated_backend(1800, 0);
  const StickyCookie& c = *b->cookie();
  const std::string v = c.value_for(*b->servers()[0], kT);
  for (size_t i : {size_t{0}, size_t{5}, size_t{11}, size_t{12}, size_t{19}}) {
    std::string t = v;
    t[i] ^= 1;
    EXPECT_EQ(c.decode(t, kT).status, CookieStatus::kInvalid) << t;
  }
  // A date char outside the alphabet.
  for (size_t i : {size_t{13}, size_t{18}, size_t{20}, size_t{25}}) {
    for (char bad : {'.', '=', '+', '/', ' ', '\0', '\xff'}) {
      std::string t = v;
      t[i] = bad;
      EXPECT_EQ(c.decode(t, kT).status, CookieStatus::kInvalid) << i;
    }
  }
}

TEST(StickyCookieDated, TruncatedOrExtendedIsInvalid) {
  for (auto secrets : {std::vector<std::string>{}, std::vector<std::string>{"k1"}}) {
    auto b = dated_backend(1800, 28800, secrets);
    const StickyCookie& c = *b->cookie();
    const std::string v = c.value_for(*b->servers()[0], kT);
    for (size_t n = 0; n < v.size(); ++n)
      EXPECT_EQ(c.decode(v.substr(0, n), kT).status, CookieStatus::kInvalid) << n;
    for (size_t n = 1; n < v.size(); ++n)
      EXPECT_EQ(c.decode(v.substr(n), kT).status, CookieStatus::kInvalid) << n;
    for (const std::string& longer : {v + "A", v + ".", "A" + v, v + v, v + '\0'})
      EXPECT_EQ(c.decode(longer, kT).status, CookieStatus::kInvalid) << longer;
  }
}

TEST(StickyCookieDated, MacUnderAnotherSecretIsInvalid) {
  auto b = dated_backend(1800, 0, {"k1", "k0"});
  const StickyCookie& c = *b->cookie();
  const std::string body = b->servers()[0]->cookie_id() + "." + date36(kT) + "." + date36(kT);
  ASSERT_EQ(c.decode(body + "." + mac22("k1", body), kT).status, CookieStatus::kValid);
  // A key not in the list.
  EXPECT_EQ(c.decode(body + "." + mac22("intruder", body), kT).status, CookieStatus::kInvalid);
  // A listed key, but not the one that derived the id: the MAC is bound to
  // the id's key (the gateway never writes such a value).
  EXPECT_EQ(c.decode(body + "." + mac22("k0", body), kT).status, CookieStatus::kInvalid);
  // A MAC over other bytes.
  EXPECT_EQ(c.decode(body + "." + mac22("k1", body + "x"), kT).status, CookieStatus::kInvalid);
  // A whole value from a gateway with another secret: its ids are unknown here.
  auto other = dated_backend(1800, 0, {"intruder"});
  EXPECT_EQ(c.decode(other->cookie()->value_for(*other->servers()[0], kT), kT).status,
            CookieStatus::kInvalid);
}

TEST(StickyCookieDated, RotationVerifiesOlderKeysAndReSigns) {
  auto before = dated_backend(1800, 28800, {"old"});
  auto after = dated_backend(1800, 28800, {"new", "old"});
  auto later = dated_backend(1800, 28800, {"new"});
  const std::string issued = before->cookie()->value_for(*before->servers()[2], kT);

  const StickyCookie& c = *after->cookie();
  auto r = c.decode(issued, kT + 5);
  EXPECT_EQ(r.status, CookieStatus::kValid);
  EXPECT_EQ(r.server, after->servers()[2]);
  EXPECT_TRUE(r.refresh) << "re-sign with the current key, even before the idle refresh";
  EXPECT_EQ(r.created, kT);

  // Re-issued: under "new", with its creation date.
  const std::string resigned = c.value_for(*r.server, kT + 5, r.created);
  EXPECT_EQ(resigned.substr(0, 12), StickyCookie::derive_id("app", "s3", "new"));
  auto r2 = c.decode(resigned, kT + 6);
  EXPECT_EQ(r2.status, CookieStatus::kValid);
  EXPECT_FALSE(r2.refresh);
  EXPECT_EQ(r2.created, kT);
  EXPECT_EQ(later->cookie()->decode(resigned, kT + 6).status, CookieStatus::kValid);

  // An expired old-key cookie is expired (verified), not invalid.
  EXPECT_EQ(c.decode(issued, kT + 1801).status, CookieStatus::kExpired);

  // Once "old" is removed, its cookies verify nothing.
  auto gone = later->cookie()->decode(issued, kT + 5);
  EXPECT_EQ(gone.status, CookieStatus::kInvalid);
  EXPECT_EQ(gone.server, nullptr);
}

TEST(StickyCookieDated, UnsignedValueWhenASecretIsConfiguredIsInvalid) {
  auto plain = dated_backend(1800, 0);
  auto keyed = dated_backend(1800, 0, {"k1"});
  const StickyCookie& c = *keyed->cookie();
  // Issued without a secret.
  EXPECT_EQ(c.decode(plain->cookie()->value_for(*plain->servers()[0], kT), kT).status,
            CookieStatus::kInvalid);
  // The keyed id and dates, MAC stripped (with and without its dot).
  const std::string v = c.value_for(*keyed->servers()[0], kT);
  EXPECT_EQ(c.decode(v.substr(0, 26), kT).status, CookieStatus::kInvalid);
  EXPECT_EQ(c.decode(v.substr(0, 27), kT).status, CookieStatus::kInvalid);
  EXPECT_EQ(c.decode(v.substr(0, 26) + "." + std::string(22, 'A'), kT).status,
            CookieStatus::kInvalid);
  // And the other way: a signed value where no secret is configured.
  EXPECT_EQ(plain->cookie()->decode(v, kT).status, CookieStatus::kInvalid);
}

TEST(StickyCookieDated, DatesMustMatchTheConfig) {
  auto undated = dated_backend(0, 0);
  auto dated = dated_backend(1800, 0);
  const std::string with_dates = dated->cookie()->value_for(*dated->servers()[0], kT);
  const std::string id = undated->servers()[0]->cookie_id();
  ASSERT_EQ(with_dates.substr(0, 12), id);
  // Dates present when the config has none.
  EXPECT_EQ(undated->cookie()->decode(with_dates, kT).status, CookieStatus::kInvalid);
  // Dates absent when the config has some.
  EXPECT_EQ(dated->cookie()->decode(id, kT).status, CookieStatus::kInvalid);
  EXPECT_EQ(dated->cookie()->decode(id + "..", kT).status, CookieStatus::kInvalid);
}

TEST(StickyCookieDated, CreationAfterLastSeenIsInvalid) {
  auto plain = dated_backend(1800, 28800);
  auto keyed = dated_backend(1800, 28800, {"k1"});
  const std::string id = plain->servers()[0]->cookie_id();
  const std::string kid = keyed->servers()[0]->cookie_id();
  const std::string ok = id + "." + date36(kT) + "." + date36(kT - 1);
  EXPECT_EQ(plain->cookie()->decode(ok, kT).status, CookieStatus::kValid);
  const std::string bad = id + "." + date36(kT) + "." + date36(kT + 1);
  EXPECT_EQ(plain->cookie()->decode(bad, kT + 10).status, CookieStatus::kInvalid);
  // Even correctly signed.
  const std::string kbad = kid + "." + date36(kT) + "." + date36(kT + 1);
  ASSERT_EQ(keyed->cookie()->decode(kid + "." + date36(kT + 1) + "." + date36(kT) + "." +
                                        mac22("k1", kid + "." + date36(kT + 1) + "." + date36(kT)),
                                    kT + 10)
                .status,
            CookieStatus::kValid);
  EXPECT_EQ(keyed->cookie()->decode(kbad + "." + mac22("k1", kbad), kT + 10).status,
            CookieStatus::kInvalid);
}

TEST(StickyCookieDated, FutureDatesBeyondSkewAreInvalid) {
  static_assert(StickyCookie::kMaxFutureSkewSeconds == 60);
  for (auto secrets : {std::vector<std::string>{}, std::vector<std::string>{"k1"}}) {
    auto b = dated_backend(1800, 28800, secrets);
    const StickyCookie& c = *b->cookie();
    Server& s = *b->servers()[0];
    // Issued by a replica whose clock is ahead.
    auto within = c.decode(c.value_for(s, kT + 60), kT);
    EXPECT_EQ(within.status, CookieStatus::kValid);
    EXPECT_EQ(within.server, &s);
    EXPECT_FALSE(within.refresh);
    auto beyond = c.decode(c.value_for(s, kT + 61), kT);
    EXPECT_EQ(beyond.status, CookieStatus::kInvalid);
    EXPECT_EQ(beyond.server, nullptr);
    EXPECT_EQ(c.decode(c.value_for(s, kT + 86400 * 365), kT).status, CookieStatus::kInvalid);
  }
}

TEST(StickyCookieDated, ExtremeClocksNeverCrash) {
  auto b = dated_backend(1800, 28800, {"k1"});
  const StickyCookie& c = *b->cookie();
  Server& s = *b->servers()[0];
  for (int64_t now : {INT64_MIN, int64_t{-1}, int64_t{0}, int64_t{1}, kT,
                      (int64_t{1} << 36) - 1, int64_t{1} << 36, INT64_MAX - 60, INT64_MAX}) {
    // Issued at `now` (clamped to the 36-bit range) and decoded then.
    const std::string v = c.value_for(s, now);
    EXPECT_EQ(v.size(), 49u);
    auto r = c.decode(v, now);
    if (now >= 0 && now < (int64_t{1} << 36)) {
      EXPECT_EQ(r.status, CookieStatus::kValid) << now;
    }
    for (int64_t other : {INT64_MIN, int64_t{0}, kT, INT64_MAX}) {
      auto o = c.decode(v, other);
      if (o.server) {
        EXPECT_EQ(o.server, &s);
      }
    }
  }
  const std::string v = c.value_for(s, kT);
  EXPECT_EQ(c.decode(v, INT64_MAX).status, CookieStatus::kExpired);
  EXPECT_EQ(c.decode(v, INT64_MIN).status, CookieStatus::kInvalid);
  EXPECT_EQ(c.decode(v, -1).status, CookieStatus::kInvalid);
}

// decode runs on every request: it must not allocate (C++ allocations are
// counted by the replaceable operator new above).
TEST(StickyCookieDated, DecodeDoesNotAllocate) {
  auto b = dated_backend(1800, 28800, {"k1", "k0"});
  auto undated = dated_backend(0, 0, {"k1", "k0"});
  const StickyCookie& c = *b->cookie();
  const std::string fresh = c.value_for(*b->servers()[0], kT);
  auto before_rotation = dated_backend(1800, 28800, {"k0"});
  const std::string old_key =
      before_rotation->cookie()->value_for(*before_rotation->servers()[1], kT);
  const std::string bad_mac = fresh.substr(0, 27) + std::string(22, 'A');
  const std::string garbage(300, '\xff');
  const std::string bare = undated->servers()[0]->cookie_id();
  g_count_allocations = true;
  g_allocations = 0;
  int valid = 0;
  for (int i = 0; i < 10; ++i) {
    valid += c.decode(fresh, kT + 100).status == CookieStatus::kValid;
    valid += c.decode(old_key, kT + 100).status == CookieStatus::kValid;
    valid += c.decode(fresh, kT + 100000).status == CookieStatus::kExpired;
    valid += c.decode(bad_mac, kT).status == CookieStatus::kInvalid;
    valid += c.decode(garbage, kT).status == CookieStatus::kInvalid;
    valid += undated->cookie()->decode(bare, kT).status == CookieStatus::kValid;
  }
  g_count_allocations = false;
  EXPECT_EQ(valid, 60);
  EXPECT_EQ(g_allocations.load(), 0);
}

TEST(StickyCookieDated, RandomBytesNeverNameAServerOutsideTheBackend) {
  auto b = dated_backend(1800, 28800, {"k1", "k0"});
  const StickyCookie& c = *b->cookie();
  auto servers = b->servers();
  std::vector<std::string> valid;
  for (Server* s : servers) valid.push_back(c.value_for(*s, kT - 30, kT - 600));
  std::vector<std::string> ids;
  for (Server* s : servers) {
    ids.push_back(s->cookie_id());
    ids.push_back(StickyCookie::derive_id("app", s->name(), "k0"));
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> len(0, 64);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> b64(0, 63);
  std::uniform_int_distribution<int> b64dot(0, 64);
  int checked = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string v;
    switch (i % 4) {
      case 0:  // arbitrary bytes
        v.resize(static_cast<size_t>(len(rng)));
        for (char& ch : v) ch = static_cast<char>(byte(rng));
        break;
      case 1:  // the right length, cookie alphabet
        v.resize(49);
        for (char& ch : v) ch = kAlphabet[b64dot(rng)];
        break;
      case 2: {  // a known id, dots in place, random dates and MAC
        v = ids[static_cast<size_t>(i / 4) % ids.size()];
        v += '.';
        for (int k = 0; k < 6; ++k) v += kAlphabet[b64(rng)];
        v += '.';
        for (int k = 0; k < 6; ++k) v += kAlphabet[b64(rng)];
        v += '.';
        for (int k = 0; k < 22; ++k) v += kAlphabet[b64(rng)];
        break;
      }
      case 3: {  // a valid value with 1-3 random bytes changed
        v = valid[static_cast<size_t>(i / 4) % valid.size()];
        std::uniform_int_distribution<size_t> pos(0, v.size() - 1);
        const int n = 1 + i / 4 % 3;
        for (int k = 0; k < n; ++k) v[pos(rng)] = static_cast<char>(byte(rng));
        break;
      }
    }
    auto r = c.decode(v, kT);
    if (r.server) {
      ASSERT_NE(std::find(servers.begin(), servers.end(), r.server), servers.end()) << i;
    }
    if (std::find(valid.begin(), valid.end(), v) != valid.end()) continue;
    ++checked;
    EXPECT_EQ(r.status, CookieStatus::kInvalid) << i << " " << v;
    EXPECT_EQ(r.server, nullptr) << i;
  }
  EXPECT_GT(checked, 9900);
}

TEST(StickyCookieDated, ReplicasAgree) {
  auto bc1 = backend_config("app", {"s1", "s2", "s3"});
  auto bc2 = backend_config("app", {"s3", "s1", "s2"});
  for (auto* bc : {&bc1, &bc2}) {
    bc->persistence.cookie->max_idle = std::chrono::minutes(30);
    bc->persistence.cookie->secrets = {"k1"};
  }
  Backend a(bc1);
  Backend b(bc2);
  for (const char* name : {"s1", "s2", "s3"}) {
    const std::string va = a.cookie()->value_for(*a.find_server(name), kT);
    EXPECT_EQ(va, b.cookie()->value_for(*b.find_server(name), kT)) << name;
    auto r = b.cookie()->decode(va, kT + 10);
    EXPECT_EQ(r.status, CookieStatus::kValid) << name;
    EXPECT_EQ(r.server, b.find_server(name)) << name;
  }
}

}  // namespace
}  // namespace sag::affinity
