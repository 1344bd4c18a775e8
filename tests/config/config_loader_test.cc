// ConfigLoader: defaults, the full docs/configuration.md example, and every error kind with
// its exact FILE:LINE:COL, so a moved position or a lost error shows up.
#include "config/config_loader.h"
#include "tests/config/load_errors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace sag::config {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

using testing::errors_of;

std::vector<std::string> warnings_of(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.warnings) out.push_back(e.to_string());
  return out;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const fs::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::string replace_once(std::string s, std::string_view from, std::string_view to) {
  auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// A plain listener and one backend, six lines: backend keys appended with a
// 4-space indent land in backend 'app' from line 7; unindented ones are
// top-level sections from line 7.
constexpr const char* kHead =
    "listeners:\n"
    "  - {name: web, bind: \"127.0.0.1:8080\", backend: app}\n"
    "backends:\n"
    "  - name: app\n"
    "    servers:\n"
    "      - {name: s1, address: \"127.0.0.1:9001\"}\n";

class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sag_config_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    fs::create_directory(dir_ / "certs");
  }
  void TearDown() override { fs::remove_all(dir_); }

  LoadResult load(std::string_view yaml) { return ConfigLoader::load_string(yaml, "t.yaml", dir_.string()); }
  std::vector<std::string> errors(std::string_view yaml) { return errors_of(load(yaml)); }
  std::vector<std::string> head_errors(std::string_view extra) { return errors(std::string(kHead) + std::string(extra)); }

  fs::path dir_;
};

// ---------------------------------------------------------------------------
// Successful loads

TEST_F(ConfigLoaderTest, MinimalConfigHasEveryDefault) {
  auto r = load(
      "listeners:\n"
      "  - name: https\n"
      "    bind: \"0.0.0.0:8443\"\n"
      "    tls:\n"
      "      certificates: certs/\n"
      "    backend: app\n"
      "backends:\n"
      "  - name: app\n"
      "    servers:\n"
      "      - {name: s1, address: \"127.0.0.1:9001\"}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_THAT(warnings_of(r), IsEmpty());
  ASSERT_TRUE(r.config);
  const GatewayConfig& c = *r.config;
  EXPECT_EQ(c.source_path, "t.yaml");
  EXPECT_EQ(c.workers, 0u);

  ASSERT_EQ(c.listeners.size(), 1u);
  const ListenerConfig& l = c.listeners[0];
  EXPECT_EQ(l.name, "https");
  EXPECT_EQ(l.bind, "0.0.0.0:8443");
  EXPECT_EQ(l.endpoint.to_string(), "0.0.0.0:8443");
  ASSERT_TRUE(l.tls);
  EXPECT_EQ(l.tls->certificates_dir, (dir_ / "certs/").string());
  EXPECT_THAT(l.tls->certificate_files, IsEmpty());
  EXPECT_THAT(l.tls->alpn, ElementsAre("h2", "http/1.1"));
  EXPECT_EQ(l.tls->min_version, 0x0303);
  EXPECT_TRUE(l.tls->session_tickets);
  EXPECT_EQ(l.backend, "app");
  EXPECT_THAT(l.routes, IsEmpty());
  EXPECT_FALSE(l.redirect_https);

  ASSERT_EQ(c.backends.size(), 1u);
  const BackendConfig& b = c.backends[0];
  EXPECT_EQ(b.name, "app");
  EXPECT_EQ(b.balance, BalanceAlgorithm::kRoundRobin);
  EXPECT_EQ(b.hash_key, "");
  ASSERT_EQ(b.servers.size(), 1u);
  EXPECT_EQ(b.servers[0].name, "s1");
  EXPECT_EQ(b.servers[0].address, "127.0.0.1:9001");
  EXPECT_EQ(b.servers[0].endpoint.to_string(), "127.0.0.1:9001");
  EXPECT_EQ(b.servers[0].weight, 100u);
  EXPECT_FALSE(b.servers[0].backup);

  EXPECT_EQ(b.health_check.type, HealthCheckType::kTcp);
  EXPECT_EQ(b.health_check.path, "/");
  EXPECT_EQ(b.health_check.host, "");
  EXPECT_EQ(b.health_check.expect_status_min, 200);
  EXPECT_EQ(b.health_check.expect_status_max, 399);
  EXPECT_EQ(b.health_check.interval, Duration(2000));
  EXPECT_EQ(b.health_check.timeout, Duration(1000));
  EXPECT_EQ(b.health_check.rise, 2u);
  EXPECT_EQ(b.health_check.fall, 3u);
  EXPECT_FALSE(b.passive);
  EXPECT_EQ(b.slow_start, Duration(0));

  ASSERT_TRUE(b.persistence.cookie);
  const CookieConfig& ck = *b.persistence.cookie;
  EXPECT_EQ(ck.name, "SRV");
  EXPECT_EQ(ck.mode, CookieMode::kInsert);
  EXPECT_EQ(ck.app_cookie, "");
  EXPECT_EQ(ck.path, "/");
  EXPECT_EQ(ck.domain, "");
  EXPECT_EQ(ck.secure, SecureFlag::kAuto);
  EXPECT_TRUE(ck.http_only);
  EXPECT_EQ(ck.same_site, SameSite::kLax);
  EXPECT_EQ(ck.max_age, Duration(0));
  // docs/configuration.md: "Other keys: the values shown above" (max_idle 30m, max_life 8h).
  EXPECT_EQ(ck.max_idle, Duration(30 * 60 * 1000));
  EXPECT_EQ(ck.max_life, Duration(8 * 60 * 60 * 1000));
  EXPECT_EQ(ck.secret_file, "");
  EXPECT_THAT(ck.secrets, IsEmpty());
  EXPECT_FALSE(b.persistence.learn);
  EXPECT_FALSE(b.persistence.source);

  EXPECT_TRUE(b.redispatch);
  EXPECT_EQ(b.retries, 2u);
  EXPECT_EQ(b.connect_timeout, Duration(2000));
  EXPECT_EQ(b.server_timeout, Duration(30000));
  EXPECT_EQ(b.pool.max_idle_per_server, 64u);
  EXPECT_EQ(b.pool.idle_timeout, Duration(60000));

  EXPECT_THAT(c.forwarded.trusted_proxies, IsEmpty());
  EXPECT_TRUE(c.forwarded.x_forwarded_for);
  EXPECT_TRUE(c.forwarded.x_forwarded_proto);
  EXPECT_TRUE(c.forwarded.x_forwarded_host);
  EXPECT_FALSE(c.forwarded.forwarded);

  EXPECT_EQ(c.affinity_store.type, StoreType::kMemory);
  EXPECT_EQ(c.affinity_store.capacity, 1000000u);
  EXPECT_EQ(c.affinity_store.redis.address, "127.0.0.1:6379");
  EXPECT_EQ(c.affinity_store.redis.key_prefix, "gw:");
  EXPECT_EQ(c.affinity_store.redis.db, 0u);
  EXPECT_EQ(c.affinity_store.redis.timeout, Duration(200));
  EXPECT_EQ(c.affinity_store.redis.password, "");

  EXPECT_EQ(c.limits.max_connections, 100000u);
  EXPECT_EQ(c.limits.max_header_bytes, 32u * 1024);
  EXPECT_EQ(c.limits.max_headers, 100u);
  EXPECT_EQ(c.limits.max_request_line, 8u * 1024);
  EXPECT_EQ(c.limits.max_body, 0u);
  EXPECT_EQ(c.limits.h2_max_concurrent_streams, 100u);

  EXPECT_EQ(c.timeouts.client, Duration(30000));
  EXPECT_EQ(c.timeouts.http_request, Duration(10000));
  EXPECT_EQ(c.timeouts.keepalive, Duration(60000));
  EXPECT_EQ(c.timeouts.shutdown, Duration(30000));

  EXPECT_FALSE(c.admin);
  EXPECT_EQ(c.access_log.path, "-");
  EXPECT_EQ(c.access_log.format, LogFormat::kText);

  EXPECT_EQ(c.find_backend("app"), &c.backends[0]);
  EXPECT_EQ(c.find_backend("nope"), nullptr);
}

std::string spec_example() { return read_text(fs::path(SAG_TEST_DATA_DIR) / "config" / "spec_full.yaml"); }

TEST_F(ConfigLoaderTest, FullSpecExampleLoads) {
  const std::string yaml = spec_example();
  ASSERT_NE(yaml.find("affinity_store:"), std::string::npos) << "fixture missing";
  auto r = load(yaml);
  ASSERT_THAT(errors_of(r), IsEmpty());
  ASSERT_TRUE(r.config);
  const GatewayConfig& c = *r.config;
  EXPECT_EQ(c.workers, 0u);

  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].name, "https");
  ASSERT_TRUE(c.listeners[0].tls);
  EXPECT_THAT(c.listeners[0].tls->alpn, ElementsAre("h2", "http/1.1"));
  EXPECT_EQ(c.listeners[0].tls->min_version, 0x0303);
  EXPECT_EQ(c.listeners[0].backend, "app");
  EXPECT_EQ(c.listeners[1].name, "http");
  EXPECT_FALSE(c.listeners[1].tls);
  EXPECT_EQ(c.listeners[1].backend, "");
  ASSERT_TRUE(c.listeners[1].redirect_https);
  EXPECT_EQ(*c.listeners[1].redirect_https, 8443);

  ASSERT_EQ(c.backends.size(), 1u);
  const BackendConfig& b = c.backends[0];
  EXPECT_EQ(b.hash_key, "cookie:JSESSIONID");
  ASSERT_EQ(b.servers.size(), 3u);
  EXPECT_EQ(b.servers[2].name, "s3");
  EXPECT_EQ(b.servers[2].endpoint.port, 9003);
  EXPECT_TRUE(b.servers[2].backup);
  EXPECT_FALSE(b.servers[1].backup);
  EXPECT_EQ(b.health_check.type, HealthCheckType::kHttp);
  EXPECT_EQ(b.health_check.path, "/healthz");
  EXPECT_EQ(b.health_check.host, "app.internal");
  EXPECT_EQ(b.health_check.expect_status_min, 200);
  EXPECT_EQ(b.health_check.expect_status_max, 399);
  EXPECT_EQ(b.health_check.interval, Duration(1000));
  EXPECT_EQ(b.health_check.timeout, Duration(500));
  ASSERT_TRUE(b.passive);
  EXPECT_EQ(b.passive->consecutive_failures, 5u);
  EXPECT_EQ(b.passive->eject_for, Duration(30000));
  EXPECT_EQ(b.slow_start, Duration(10000));
  ASSERT_TRUE(b.persistence.cookie);
  EXPECT_EQ(b.persistence.cookie->app_cookie, "JSESSIONID");
  EXPECT_EQ(b.persistence.cookie->max_idle, Duration(30 * 60 * 1000));
  EXPECT_EQ(b.persistence.cookie->max_life, Duration(8 * 60 * 60 * 1000));
  ASSERT_TRUE(b.persistence.learn);
  EXPECT_EQ(b.persistence.learn->cookie, "JSESSIONID");
  EXPECT_EQ(b.persistence.learn->ttl, Duration(30 * 60 * 1000));
  ASSERT_TRUE(b.persistence.source);
  EXPECT_EQ(b.persistence.source->ipv4_mask, 32u);
  EXPECT_EQ(b.persistence.source->ipv6_mask, 64u);
  EXPECT_EQ(b.connect_timeout, Duration(2000));
  EXPECT_EQ(b.server_timeout, Duration(30000));

  ASSERT_EQ(c.forwarded.trusted_proxies.size(), 1u);
  EXPECT_TRUE(c.forwarded.trusted_proxies[0].contains(*IpAddress::parse("10.200.0.1")));
  EXPECT_FALSE(c.forwarded.trusted_proxies[0].contains(*IpAddress::parse("11.0.0.1")));
  ASSERT_TRUE(c.admin);
  EXPECT_EQ(c.admin->endpoint.to_string(), "127.0.0.1:9901");
  EXPECT_EQ(c.admin->user, "admin");
  EXPECT_EQ(c.admin->password, "");
  EXPECT_EQ(c.access_log.path, "-");

  // Every key of the example is acted on: nothing to warn about.
  EXPECT_THAT(warnings_of(r), IsEmpty());
}

TEST_F(ConfigLoaderTest, FullSpecExampleWithSecretAndPasswordFiles) {
  write_text(dir_ / "secrets.txt", "first-secret  \n\n  second secret\t\r\n   \n");
  fs::create_directory(dir_ / "sub");
  write_text(dir_ / "sub" / "admin.pw", "hunter2\r\nnot this line\n");
  write_text(dir_ / "redis.pw", "redispw");
  std::string yaml = spec_example();
  yaml = replace_once(yaml, "secret_file: \"\"", "secret_file: secrets.txt");
  yaml = replace_once(yaml, "password_file: \"\"", "password_file: " + (dir_ / "redis.pw").string());
  yaml = replace_once(yaml, "password_file: \"\"", "password_file: sub/admin.pw");
  auto r = load(yaml);
  ASSERT_THAT(errors_of(r), IsEmpty());
  const CookieConfig& ck = *r.config->backends[0].persistence.cookie;
  EXPECT_EQ(ck.secret_file, "secrets.txt");
  EXPECT_THAT(ck.secrets, ElementsAre("first-secret", "  second secret"));
  EXPECT_EQ(r.config->admin->password_file, "sub/admin.pw");
  EXPECT_EQ(r.config->admin->password, "hunter2");
  EXPECT_EQ(r.config->affinity_store.redis.password, "redispw");
}

TEST_F(ConfigLoaderTest, LoadFileResolvesAgainstTheConfigDirectory) {
  write_text(dir_ / "gw.yaml",
             "listeners:\n"
             "  - {name: https, bind: \"127.0.0.1:0\", tls: {certificates: certs}, backend: app}\n"
             "backends:\n"
             "  - name: app\n"
             "    servers: [{name: s1, address: \"localhost:9001\"}]\n");
  const std::string path = (dir_ / "gw.yaml").string();
  auto r = ConfigLoader::load_file(path);
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_EQ(r.config->source_path, path);
  EXPECT_EQ(r.config->listeners[0].tls->certificates_dir, (dir_ / "certs").string());
  EXPECT_EQ(r.config->listeners[0].endpoint.port, 0);
  EXPECT_EQ(r.config->backends[0].servers[0].endpoint.to_string(), "127.0.0.1:9001");
}

TEST_F(ConfigLoaderTest, LoadFileMissing) {
  const std::string path = (dir_ / "nope.yaml").string();
  auto r = ConfigLoader::load_file(path);
  EXPECT_FALSE(r.config);
  EXPECT_THAT(errors_of(r), ElementsAre(path + ": cannot read the configuration: No such file or directory"));
}

TEST_F(ConfigLoaderTest, CertificateListAndFlowStyleTls) {
  write_text(dir_ / "a.crt", "x");
  write_text(dir_ / "a.key", "x");
  auto r = load(
      "listeners:\n"
      "  - name: https\n"
      "    bind: \"[::1]:8443\"\n"
      "    tls: {certificates: [{cert: a.crt, key: a.key}], alpn: [http/1.1], min_version: TLSv1.3, "
      "session_tickets: false}\n"
      "    backend: app\n"
      "backends:\n"
      "  - name: app\n"
      "    servers:\n"
      "      - {name: s1, address: \"[::1]:9001\", weight: 0}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  const TlsConfig& t = *r.config->listeners[0].tls;
  EXPECT_EQ(t.certificates_dir, "");
  ASSERT_EQ(t.certificate_files.size(), 1u);
  EXPECT_EQ(t.certificate_files[0].cert, (dir_ / "a.crt").string());
  EXPECT_EQ(t.certificate_files[0].key, (dir_ / "a.key").string());
  EXPECT_THAT(t.alpn, ElementsAre("http/1.1"));
  EXPECT_EQ(t.min_version, 0x0304);
  EXPECT_FALSE(t.session_tickets);
  EXPECT_TRUE(r.config->listeners[0].endpoint.ip.v6);
  EXPECT_EQ(r.config->backends[0].servers[0].weight, 0u);
}

TEST_F(ConfigLoaderTest, PersistenceWithoutCookieHasNoCookie) {
  auto r = load(std::string(kHead) +
                "    persistence:\n"
                "      source: {ipv4_mask: 24, ipv6_mask: 48, ttl: 5m}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  const PersistenceConfig& p = r.config->backends[0].persistence;
  EXPECT_FALSE(p.cookie);
  EXPECT_FALSE(p.learn);
  ASSERT_TRUE(p.source);
  EXPECT_EQ(p.source->ipv4_mask, 24u);
  EXPECT_EQ(p.source->ipv6_mask, 48u);
  EXPECT_EQ(p.source->ttl, Duration(5 * 60 * 1000));
}

TEST_F(ConfigLoaderTest, ExplicitValuesOverrideDefaults) {
  auto r = load(std::string(kHead) +
                "    balance: hash\n"
                "    hash_key: \"header:X-User\"\n"
                "    retries: 10\n"
                "    redispatch: false\n"
                "    persistence:\n"
                "      cookie: {name: GW, secure: true, same_site: None, http_only: false, max_age: 1h, domain: "
                "\".example.com\", path: /app}\n"
                "workers: 8\n"
                "limits: {max_body: 1GiB, max_header_bytes: 16KiB, max_request_line: 512, max_connections: 7}\n"
                "timeouts: {client: 250ms, shutdown: 0}\n"
                "forwarded: {trusted_proxies: [\"::1\", 192.168.0.0/16], x_forwarded_host: false}\n"
                "access_log: {path: \"\"}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  const GatewayConfig& c = *r.config;
  const BackendConfig& b = c.backends[0];
  EXPECT_EQ(b.balance, BalanceAlgorithm::kHash);
  EXPECT_EQ(b.hash_key, "header:X-User");
  EXPECT_EQ(b.retries, 10u);
  EXPECT_FALSE(b.redispatch);
  const CookieConfig& ck = *b.persistence.cookie;
  EXPECT_EQ(ck.name, "GW");
  EXPECT_EQ(ck.secure, SecureFlag::kOn);
  EXPECT_EQ(ck.same_site, SameSite::kNone);
  EXPECT_FALSE(ck.http_only);
  EXPECT_EQ(ck.max_age, Duration(3600 * 1000));
  EXPECT_EQ(ck.domain, ".example.com");
  EXPECT_EQ(ck.path, "/app");
  EXPECT_EQ(c.workers, 8u);
  EXPECT_EQ(c.limits.max_body, uint64_t{1} << 30);
  EXPECT_EQ(c.limits.max_header_bytes, 16u * 1024);
  EXPECT_EQ(c.limits.max_request_line, 512u);
  EXPECT_EQ(c.limits.max_connections, 7u);
  EXPECT_EQ(c.timeouts.client, Duration(250));
  EXPECT_EQ(c.timeouts.shutdown, Duration(0));
  EXPECT_EQ(c.timeouts.keepalive, Duration(60000));
  ASSERT_EQ(c.forwarded.trusted_proxies.size(), 2u);
  EXPECT_EQ(c.forwarded.trusted_proxies[0].prefix, 128u);
  EXPECT_EQ(c.forwarded.trusted_proxies[1].prefix, 16u);
  EXPECT_FALSE(c.forwarded.x_forwarded_host);
  EXPECT_TRUE(c.forwarded.x_forwarded_for);
  EXPECT_EQ(c.access_log.path, "");
}

// ---------------------------------------------------------------------------
// Document-level errors

TEST_F(ConfigLoaderTest, YamlSyntaxErrorHasPosition) {
  EXPECT_THAT(errors("listeners: [a, b\nbackends: 1\n"),
              ElementsAre("t.yaml:2:9: YAML syntax error: end of sequence flow not found"));
  EXPECT_THAT(errors("workers: auto\nlisteners: x: y\n"),
              ElementsAre("t.yaml:2:13: YAML syntax error: illegal map value"));
}

// yaml-cpp 0.7's LoadAll never returns on these (jbeder/yaml-cpp#1040).
TEST_F(ConfigLoaderTest, StrayCommaIsASyntaxErrorNotAHang) {
  EXPECT_THAT(errors(","), ElementsAre("t.yaml:1:1: YAML syntax error: unexpected ','"));
  EXPECT_THAT(errors(",\nworkers: 1\n"), ElementsAre("t.yaml:1:1: YAML syntax error: unexpected ','"));
  EXPECT_THAT(head_errors("---\n,\n"), ElementsAre("t.yaml:8:1: YAML syntax error: unexpected ','"));
}

TEST_F(ConfigLoaderTest, EmptyConfig) {
  const char* kEmpty = "t.yaml:1:1: the configuration is empty: at least one listener and one backend are required";
  EXPECT_THAT(errors(""), ElementsAre(kEmpty));
  EXPECT_THAT(errors("# nothing\n"), ElementsAre(kEmpty));
  EXPECT_THAT(errors("~\n"), ElementsAre(kEmpty));
  EXPECT_FALSE(load("").config);
}

TEST_F(ConfigLoaderTest, TopLevelMustBeAMap) {
  EXPECT_THAT(errors("- a\n- b\n"), ElementsAre("t.yaml:1:1: the top level must be a map (key: value), not a list"));
  EXPECT_THAT(errors("hello\n"), ElementsAre("t.yaml:1:1: the top level must be a map (key: value), not a value"));
}

TEST_F(ConfigLoaderTest, ListenersAndBackendsRequired) {
  EXPECT_THAT(errors("workers: 2\n"),
              ElementsAre("t.yaml:1:1: missing required key 'listeners' at the top level (at least one listener is "
                          "required)",
                          "t.yaml:1:1: missing required key 'backends' at the top level (at least one backend is "
                          "required)"));
  EXPECT_THAT(errors("listeners: []\nbackends:\n"),
              ElementsAre("t.yaml:1:12: 'listeners': at least one listener is required",
                          "t.yaml:2:1: 'backends': at least one backend is required"));
  EXPECT_THAT(errors("listeners: {a: 1}\nbackends: []\n"),
              ElementsAre("t.yaml:1:12: 'listeners': expected a list, got a map",
                          "t.yaml:2:11: 'backends': at least one backend is required"));
}

TEST_F(ConfigLoaderTest, OnlyOneDocument) {
  EXPECT_THAT(head_errors("---\nworkers: 2\n"),
              ElementsAre("t.yaml:7:1: only one YAML document is allowed (remove the '---')"));
}

TEST_F(ConfigLoaderTest, DuplicateYamlKey) {
  EXPECT_THAT(head_errors("    retries: 1\n    retries: 2\n"),
              ElementsAre("t.yaml:8:5: duplicate key 'retries' in backend 'app' (first at line 7)"));
}

// ---------------------------------------------------------------------------
// Unknown keys

TEST_F(ConfigLoaderTest, UnknownKeyInBackend) {
  EXPECT_THAT(head_errors("    balanse: roundrobin\n"),
              ElementsAre("t.yaml:7:5: unknown key 'balanse' in backend 'app' (did you mean 'balance'?)"));
}

TEST_F(ConfigLoaderTest, UnknownKeyAtTopLevelAndWithoutSuggestion) {
  EXPECT_THAT(head_errors("limts: {}\nfrobnicate: 1\n"),
              ElementsAre("t.yaml:7:1: unknown key 'limts' at the top level (did you mean 'limits'?)",
                          "t.yaml:8:1: unknown key 'frobnicate' at the top level"));
}

TEST_F(ConfigLoaderTest, UnknownKeyInsideFlowMap) {
  EXPECT_THAT(errors("listeners:\n"
                     "  - {name: web, bind: \"127.0.0.1:8080\", backend: app}\n"
                     "backends:\n"
                     "  - name: app\n"
                     "    servers:\n"
                     "      - {name: s1, adress: \"127.0.0.1:9001\"}\n"),
              ElementsAre("t.yaml:6:9: missing required key 'address' in server 's1' of backend 'app'",
                          "t.yaml:6:20: unknown key 'adress' in server 's1' of backend 'app' (did you mean "
                          "'address'?)"));
}

TEST_F(ConfigLoaderTest, UnknownKeysInNestedSections) {
  EXPECT_THAT(head_errors("    health_check: {typ: http}\n"
                          "    persistence:\n"
                          "      cookie: {nme: X}\n"
                          "      sticky: true\n"
                          "affinity_store: {redis: {adress: \"1.2.3.4:6379\"}}\n"
                          "admin: {bind: \"127.0.0.1:9901\", auth: {usr: a}}\n"),
              ElementsAre("t.yaml:7:20: unknown key 'typ' in 'health_check' of backend 'app' (did you mean 'type'?)",
                          "t.yaml:9:16: unknown key 'nme' in 'persistence.cookie' of backend 'app' (did you mean "
                          "'name'?)",
                          "t.yaml:10:7: unknown key 'sticky' in 'persistence' of backend 'app'",
                          "t.yaml:11:26: unknown key 'adress' in 'affinity_store.redis' (did you mean 'address'?)",
                          "t.yaml:12:40: unknown key 'usr' in 'admin.auth' (did you mean 'user'?)"));
}

// ---------------------------------------------------------------------------
// Wrong types and values

TEST_F(ConfigLoaderTest, WrongTypes) {
  EXPECT_THAT(head_errors("limits:\n"
                          "  max_headers: {a: 1}\n"
                          "  max_connections: abc\n"
                          "  h2_max_concurrent_streams: -5\n"
                          "  max_body: [1]\n"
                          "  max_request_line: 99999999999999999999999\n"
                          "timeouts: [1]\n"),
              ElementsAre("t.yaml:8:16: 'max_headers': expected a whole number, got a map",
                          "t.yaml:9:20: 'max_connections': expected a whole number, got 'abc'",
                          "t.yaml:10:30: 'h2_max_concurrent_streams': must not be negative, got -5",
                          "t.yaml:11:13: 'max_body': expected a size, got a list",
                          "t.yaml:12:21: 'max_request_line': bad size '99999999999999999999999' (use e.g. 512, "
                          "16KiB, 1MiB, 1GiB)",
                          "t.yaml:13:11: 'timeouts' must be a map (key: value), not a list"));
}

TEST_F(ConfigLoaderTest, NumberOutOfRangeAndOverflow) {
  EXPECT_THAT(head_errors("    retries: 11\n"
                          "    pool: {max_idle_per_server: 99999999999999999999999}\n"),
              ElementsAre("t.yaml:7:14: 'retries': 11 is out of range (0..10)",
                          "t.yaml:8:33: 'max_idle_per_server': 99999999999999999999999 is out of range (0..100000)"));
}

TEST_F(ConfigLoaderTest, EchoedValuesStayOnOneLineAndShort) {
  EXPECT_THAT(head_errors("    retries: \"1\\n2\\t\\x01\"\n"),
              ElementsAre("t.yaml:7:14: 'retries': expected a whole number, got '1\\n2\\t\\x01'"));
  EXPECT_THAT(head_errors("    " + std::string(100, 'k') + ": 1\n"),
              ElementsAre("t.yaml:7:5: unknown key '" + std::string(80, 'k') + "...' in backend 'app'"));
}

TEST_F(ConfigLoaderTest, EmptyValueIsReportedAtItsKey) {
  EXPECT_THAT(head_errors("    retries:\n"), ElementsAre("t.yaml:7:5: 'retries': missing value (expected a whole number)"));
}

TEST_F(ConfigLoaderTest, BooleansMustBeTrueOrFalse) {
  EXPECT_THAT(head_errors("    redispatch: yes\nforwarded: {x_forwarded_for: 1}\n"),
              ElementsAre("t.yaml:7:17: 'redispatch': expected true or false, got 'yes'",
                          "t.yaml:8:30: 'x_forwarded_for': expected true or false, got '1'"));
}

TEST_F(ConfigLoaderTest, BadDurationsAndSizes) {
  EXPECT_THAT(head_errors("    health_check: {interval: 5x, timeout: 0}\n"
                          "    timeouts: {connect: 1.5s, server: 0s}\n"
                          "limits: {max_header_bytes: 16kb, max_body: 1TiB}\n"),
              ElementsAre("t.yaml:7:30: 'interval': bad duration '5x' (use e.g. 250ms, 5s, 30m, 8h)",
                          "t.yaml:7:43: 'timeout': must be more than 0",
                          "t.yaml:8:25: 'connect': bad duration '1.5s' (use e.g. 250ms, 5s, 30m, 8h)",
                          "t.yaml:8:39: 'server': must be more than 0",
                          "t.yaml:9:28: 'max_header_bytes': bad size '16kb' (use e.g. 512, 16KiB, 1MiB, 1GiB)",
                          "t.yaml:9:44: 'max_body': bad size '1TiB' (use e.g. 512, 16KiB, 1MiB, 1GiB)"));
}

TEST_F(ConfigLoaderTest, Workers) {
  auto workers = [&](std::string_view v) {
    return errors("workers: " + std::string(v) + "\n" + std::string(kHead));
  };
  EXPECT_THAT(workers("auto"), IsEmpty());
  EXPECT_THAT(workers("1024"), IsEmpty());
  EXPECT_THAT(workers("0"), ElementsAre("t.yaml:1:10: 'workers': expected auto or a number from 1 to 1024, got '0'"));
  EXPECT_THAT(workers("1025"),
              ElementsAre("t.yaml:1:10: 'workers': expected auto or a number from 1 to 1024, got '1025'"));
  EXPECT_THAT(workers("many"),
              ElementsAre("t.yaml:1:10: 'workers': expected auto or a number from 1 to 1024, got 'many'"));
  EXPECT_EQ(load("workers: 3\n" + std::string(kHead)).config->workers, 3u);
}

TEST_F(ConfigLoaderTest, EnumValues) {
  EXPECT_THAT(head_errors("    balance: fastest\n"
                          "    health_check: {type: udp}\n"
                          "affinity_store: {type: etcd}\n"
                          "access_log: {format: xml}\n"),
              ElementsAre("t.yaml:7:14: 'balance': unknown value 'fastest' (use roundrobin, leastconn, least_time, "
                          "source, hash, random)",
                          "t.yaml:8:26: 'type': unknown value 'udp' (use http, tcp, redis, none)",
                          "t.yaml:9:24: 'type': unknown value 'etcd' (use memory, redis)",
                          "t.yaml:10:22: 'format': unknown value 'xml' (use text, json)"));
}

// ---------------------------------------------------------------------------
// Listeners

TEST_F(ConfigLoaderTest, ListenerRequiredKeysAndBadBinds) {
  EXPECT_THAT(errors("listeners:\n"
                     "  - {bind: \"127.0.0.1:8080\", backend: app}\n"
                     "  - {name: nobind, backend: app}\n"
                     "  - {name: b, bind: \"::1:8080\", backend: app}\n"
                     "  - {name: c, bind: \"example.com:80\", backend: app}\n"
                     "  - {name: \"bad name\", bind: \"127.0.0.1:0\", backend: app}\n"
                     "backends:\n"
                     "  - name: app\n"
                     "    servers: [{name: s1, address: \"127.0.0.1:9001\"}]\n"),
              ElementsAre("t.yaml:2:5: missing required key 'name' in listener #1",
                          "t.yaml:3:5: missing required key 'bind' in listener 'nobind'",
                          "t.yaml:4:21: 'bind': bad address '::1:8080' (use e.g. 0.0.0.0:8443 or [::]:8443)",
                          "t.yaml:5:21: 'bind': bad address 'example.com:80' (use e.g. 0.0.0.0:8443 or [::]:8443)",
                          "t.yaml:6:12: 'name': 'bad name' is not a valid name (use letters, digits, '-', '_', '.', "
                          "':'; at most 64)"));
}

TEST_F(ConfigLoaderTest, DuplicateNamesAndBinds) {
  EXPECT_THAT(errors("listeners:\n"
                     "  - {name: web, bind: \"0.0.0.0:8080\", backend: app}\n"
                     "  - {name: web, bind: \"127.0.0.1:8080\", backend: app}\n"
                     "  - {name: v6, bind: \"[::]:8080\", backend: app}\n"
                     "  - {name: other, bind: \"127.0.0.1:8081\", backend: app}\n"
                     "  - {name: zero1, bind: \"127.0.0.1:0\", backend: app}\n"
                     "  - {name: zero2, bind: \"127.0.0.1:0\", backend: app}\n"
                     "backends:\n"
                     "  - name: app\n"
                     "    servers:\n"
                     "      - {name: s1, address: \"127.0.0.1:9001\"}\n"
                     "      - {name: s1, address: \"127.0.0.1:9002\"}\n"
                     "  - name: app\n"
                     "    servers:\n"
                     "      - {name: s1, address: \"127.0.0.1:9001\"}\n"
                     "admin:\n"
                     "  bind: \"127.0.0.1:8081\"\n"),
              ElementsAre("t.yaml:3:12: duplicate listener name 'web' (first at line 2)",
                          "t.yaml:3:23: 'bind': 127.0.0.1:8080 is already used by listener 'web' (0.0.0.0:8080 at "
                          "line 2)",
                          "t.yaml:12:16: duplicate server name 's1' in backend 'app' (first at line 11)",
                          "t.yaml:13:11: duplicate backend name 'app' (first at line 9)",
                          "t.yaml:17:9: 'bind': 127.0.0.1:8081 is already used by listener 'other' (127.0.0.1:8081 "
                          "at line 5)"));
}

TEST_F(ConfigLoaderTest, MissingBackendReferences) {
  auto r = load("listeners:\n"
                "  - name: web\n"
                "    bind: \"127.0.0.1:8080\"\n"
                "    backend: apx\n"
                "    routes:\n"
                "      - {host: a.example, path_prefix: /api, backend: api}\n"
                "      - {path_prefix: api, backend: app}\n"
                "backends:\n"
                "  - name: app\n"
                "    servers: [{name: s1, address: \"127.0.0.1:9001\"}]\n");
  EXPECT_THAT(errors_of(r),
              ElementsAre("t.yaml:4:14: 'backend': no backend named 'apx' (defined: app)",
                          "t.yaml:6:55: 'backend': no backend named 'api' (defined: app)",
                          "t.yaml:7:23: 'path_prefix': must start with '/' and hold no spaces, got 'api'"));
  EXPECT_THAT(warnings_of(r), IsEmpty());
}

TEST_F(ConfigLoaderTest, ListenerPurposeAndRedirects) {
  EXPECT_THAT(errors("listeners:\n"
                     "  - name: idle\n"
                     "    bind: \"127.0.0.1:8080\"\n"
                     "  - name: tls-redirect\n"
                     "    bind: \"127.0.0.1:8443\"\n"
                     "    tls: {certificates: certs/}\n"
                     "    redirect_https: 443\n"
                     "  - name: both\n"
                     "    bind: \"127.0.0.1:8081\"\n"
                     "    backend: app\n"
                     "    redirect_https: 8443\n"
                     "  - name: badport\n"
                     "    bind: \"127.0.0.1:8082\"\n"
                     "    redirect_https: 0\n"
                     "  - name: ok\n"
                     "    bind: \"127.0.0.1:8083\"\n"
                     "    redirect_https: 8443\n"
                     "backends:\n"
                     "  - name: app\n"
                     "    servers: [{name: s1, address: \"127.0.0.1:9001\"}]\n"),
              ElementsAre("t.yaml:2:5: listener 'idle' has nothing to do: give it 'backend', 'routes' or "
                          "'redirect_https'",
                          "t.yaml:7:21: 'redirect_https': only a listener without 'tls' can redirect to https",
                          "t.yaml:11:21: 'redirect_https': a redirecting listener proxies nothing; remove "
                          "'backend'/'routes' or 'redirect_https'",
                          "t.yaml:14:21: 'redirect_https': 0 is out of range (1..65535)"));
}

TEST_F(ConfigLoaderTest, TlsErrors) {
  write_text(dir_ / "a.crt", "x");
  write_text(dir_ / "plainfile", "x");
  EXPECT_THAT(errors("listeners:\n"
                     "  - name: a\n"
                     "    bind: \"127.0.0.1:8443\"\n"
                     "    tls: {alpn: [h2, h3, h2], min_version: TLSv1.1}\n"
                     "    backend: app\n"
                     "  - name: b\n"
                     "    bind: \"127.0.0.1:8444\"\n"
                     "    tls: {certificates: nodir/}\n"
                     "    backend: app\n"
                     "  - name: c\n"
                     "    bind: \"127.0.0.1:8445\"\n"
                     "    tls: {certificates: plainfile, alpn: []}\n"
                     "    backend: app\n"
                     "  - name: d\n"
                     "    bind: \"127.0.0.1:8446\"\n"
                     "    tls:\n"
                     "      certificates:\n"
                     "        - {cert: a.crt, key: a.key}\n"
                     "        - {cert: a.crt}\n"
                     "    backend: app\n"
                     "backends:\n"
                     "  - name: app\n"
                     "    servers: [{name: s1, address: \"127.0.0.1:9001\"}]\n"),
              ElementsAre("t.yaml:4:10: missing required key 'certificates' in 'tls' of listener 'a' (a directory, "
                          "or a list of {cert, key})",
                          "t.yaml:4:22: 'alpn': unknown protocol 'h3' (use h2, http/1.1)",
                          "t.yaml:4:26: 'alpn': 'h2' is listed twice",
                          "t.yaml:4:44: 'min_version': unknown value 'TLSv1.1' (use TLSv1.2, TLSv1.3)",
                          "t.yaml:8:25: 'certificates': directory '" + (dir_ / "nodir/").string() +
                              "' does not exist",
                          "t.yaml:12:25: 'certificates': '" + (dir_ / "plainfile").string() +
                              "' is not a directory (give a directory, or a list of {cert, key})",
                          "t.yaml:12:42: 'alpn': give at least one protocol (h2, http/1.1)",
                          "t.yaml:18:30: 'key': file '" + (dir_ / "a.key").string() + "' does not exist",
                          "t.yaml:19:11: missing required key 'key' in certificate #2 of listener 'd'"));
}

// ---------------------------------------------------------------------------
// Backends

TEST_F(ConfigLoaderTest, BackendRequiredKeys) {
  EXPECT_THAT(errors("listeners:\n"
                     "  - {name: web, bind: \"127.0.0.1:8080\", backend: a}\n"
                     "backends:\n"
                     "  - name: a\n"
                     "  - name: b\n"
                     "    servers: []\n"
                     "  - servers:\n"
                     "      - {address: \"127.0.0.1:9001\"}\n"
                     "      - name: s2\n"),
              ElementsAre("t.yaml:4:5: missing required key 'servers' in backend 'a' (a backend needs at least one "
                          "server)",
                          "t.yaml:6:14: 'servers': backend 'b' has no servers",
                          "t.yaml:7:5: missing required key 'name' in backend #3",
                          "t.yaml:8:9: missing required key 'name' in server #1 of backend #3",
                          "t.yaml:9:9: missing required key 'address' in server 's2' of backend #3"));
}

TEST_F(ConfigLoaderTest, ServerAddressesAndWeights) {
  EXPECT_THAT(errors("listeners:\n"
                     "  - {name: web, bind: \"127.0.0.1:8080\", backend: app}\n"
                     "backends:\n"
                     "  - name: app\n"
                     "    servers:\n"
                     "      - {name: s1, address: \"127.0.0.1:0\"}\n"
                     "      - {name: s2, address: \"[::1]:9002\", weight: 1000}\n"
                     "      - {name: s3, address: \"127.0.0.1:65536\"}\n"
                     "      - {name: s4, address: \"127.0.0.1:9004\", weight: 1001}\n"
                     "      - {name: s5, address: \"127.0.0.1:9005\", backup: maybe}\n"),
              ElementsAre("t.yaml:6:29: 'address': bad address '127.0.0.1:0' (use e.g. 127.0.0.1:9001 or "
                          "[::1]:9001, port 1..65535; names other than localhost are not resolved)",
                          "t.yaml:8:29: 'address': bad address '127.0.0.1:65536' (use e.g. 127.0.0.1:9001 or "
                          "[::1]:9001, port 1..65535; names other than localhost are not resolved)",
                          "t.yaml:9:55: 'weight': 1001 is out of range (0..1000)",
                          "t.yaml:10:55: 'backup': expected true or false, got 'maybe'"));
}

TEST_F(ConfigLoaderTest, HashBalanceNeedsAValidKey) {
  EXPECT_THAT(head_errors("    balance: hash\n"), ElementsAre("t.yaml:7:14: 'balance: hash' needs 'hash_key' "
                                                                 "(header:NAME, cookie:NAME, path or source) in "
                                                                 "backend 'app'"));
  for (const char* bad : {"query:x", "header:", "cookie:a b", "paths", ""}) {
    EXPECT_THAT(head_errors("    balance: hash\n    hash_key: \"" + std::string(bad) + "\"\n"),
                ElementsAre("t.yaml:8:15: 'hash_key': bad key '" + std::string(bad) +
                            "' (use header:NAME, cookie:NAME, path or source)"))
        << bad;
  }
  for (const char* good : {"header:X-User", "cookie:JSESSIONID", "path", "source"})
    EXPECT_THAT(head_errors("    balance: hash\n    hash_key: \"" + std::string(good) + "\"\n"), IsEmpty()) << good;
}

TEST_F(ConfigLoaderTest, HealthCheckValues) {
  EXPECT_THAT(head_errors("    health_check:\n"
                          "      path: healthz\n"
                          "      expect_status: \"200-99\"\n"
                          "      rise: 0\n"
                          "      fall: 0\n"),
              ElementsAre("t.yaml:8:13: 'path': must start with '/' and hold no spaces, got 'healthz'",
                          "t.yaml:9:22: 'expect_status': bad status '200-99' (use NNN or NNN-NNN, from 100 to 599, "
                          "e.g. \"200-399\")",
                          "t.yaml:10:13: 'rise': 0 is out of range (1..1000)",
                          "t.yaml:11:13: 'fall': 0 is out of range (1..1000)"));
  for (const char* bad : {"99", "600", "2000", "200-", "-300", "300-200", "abc", "200-600", "20x"})
    EXPECT_EQ(head_errors("    health_check: {expect_status: \"" + std::string(bad) + "\"}\n").size(), 1u) << bad;
  auto r = load(std::string(kHead) + "    health_check: {expect_status: 204}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_EQ(r.config->backends[0].health_check.expect_status_min, 204);
  EXPECT_EQ(r.config->backends[0].health_check.expect_status_max, 204);
  r = load(std::string(kHead) + "    health_check: {expect_status: \"100-599\"}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_EQ(r.config->backends[0].health_check.expect_status_min, 100);
  EXPECT_EQ(r.config->backends[0].health_check.expect_status_max, 599);
}

TEST_F(ConfigLoaderTest, CookieRules) {
  EXPECT_THAT(head_errors("    persistence:\n"
                          "      cookie: {name: \"a=b\", mode: prefix, secure: false, same_site: None}\n"),
              ElementsAre("t.yaml:8:22: 'name': 'a=b' is not a valid cookie name (RFC 6265: letters, digits and "
                          "!#$%&'*+-.^_`|~)",
                          "t.yaml:8:35: 'mode: prefix' needs 'app_cookie' (the server's own session cookie) in "
                          "'persistence.cookie' of backend 'app'",
                          "t.yaml:8:69: 'same_site: None' needs a secure cookie (browsers drop SameSite=None "
                          "without Secure): set secure to auto or true"));
  EXPECT_THAT(head_errors("    persistence:\n"
                          "      cookie: {secure: yes, same_site: lax, path: \"/a;b\"}\n"),
              ElementsAre("t.yaml:8:24: 'secure': unknown value 'yes' (use auto, true, false)",
                          "t.yaml:8:40: 'same_site': unknown value 'lax' (use Lax, Strict, None)",
                          "t.yaml:8:51: 'path': must start with '/' and hold no spaces, ';', ',' or control "
                          "characters"));
  // None is fine when the cookie may be secure.
  EXPECT_THAT(head_errors("    persistence: {cookie: {same_site: None}}\n"), IsEmpty());
  EXPECT_THAT(head_errors("    persistence: {cookie: {mode: prefix, app_cookie: JSESSIONID}}\n"), IsEmpty());
}

TEST_F(ConfigLoaderTest, SourceMasks) {
  EXPECT_THAT(head_errors("    persistence: {source: {ipv4_mask: 33, ipv6_mask: 129}}\n"),
              ElementsAre("t.yaml:7:39: 'ipv4_mask': 33 is out of range (0..32)",
                          "t.yaml:7:54: 'ipv6_mask': 129 is out of range (0..128)"));
  EXPECT_THAT(head_errors("    persistence: {learn: {ttl: 1m}}\n"),
              ElementsAre("t.yaml:7:26: missing required key 'cookie' in 'persistence.learn' of backend 'app'"));
}

TEST_F(ConfigLoaderTest, SecretFileErrors) {
  write_text(dir_ / "blank.txt", "\n   \n\t\n");
  EXPECT_THAT(head_errors("    persistence: {cookie: {secret_file: missing.txt}}\n"
                          "  - name: b\n"
                          "    servers: [{name: s1, address: \"127.0.0.1:9001\"}]\n"
                          "    persistence: {cookie: {secret_file: blank.txt}}\n"
                          "  - name: c\n"
                          "    servers: [{name: s1, address: \"127.0.0.1:9001\"}]\n"
                          "    persistence: {cookie: {secret_file: certs}}\n"),
              ElementsAre("t.yaml:7:41: 'secret_file': cannot read '" + (dir_ / "missing.txt").string() +
                              "': No such file or directory",
                          "t.yaml:10:41: 'secret_file': '" + (dir_ / "blank.txt").string() +
                              "' holds no secret (one a line)",
                          "t.yaml:13:41: 'secret_file': cannot read '" + (dir_ / "certs").string() +
                              "': not a regular file"));
}

TEST_F(ConfigLoaderTest, PasswordFileErrors) {
  write_text(dir_ / "empty.pw", "\nsecond\n");
  EXPECT_THAT(head_errors("affinity_store:\n"
                          "  redis: {password_file: nope.pw}\n"
                          "admin:\n"
                          "  bind: \"127.0.0.1:9901\"\n"
                          "  auth: {password_file: empty.pw}\n"),
              ElementsAre("t.yaml:8:26: 'password_file': cannot read '" + (dir_ / "nope.pw").string() +
                              "': No such file or directory",
                          "t.yaml:11:9: 'user' is required in 'admin.auth' when 'password_file' is set",
                          "t.yaml:11:25: 'password_file': the first line of '" + (dir_ / "empty.pw").string() +
                              "' is empty"));
}

TEST_F(ConfigLoaderTest, RedisAndAdminAddresses) {
  EXPECT_THAT(head_errors("affinity_store:\n"
                          "  redis:\n"
                          "    address: \"redis:6379\"\n"
                          "    sentinel: {addresses: [\"10.0.0.1\", \"10.0.0.2:26379\"]}\n"
                          "admin: {bind: \"127.0.0.1:99999\"}\n"
                          "forwarded: {trusted_proxies: [\"10.0.0.0/33\", {a: 1}]}\n"),
              ElementsAre("t.yaml:9:14: 'address': bad address 'redis:6379' (use e.g. 127.0.0.1:6379)",
                          "t.yaml:10:5: 'sentinel': give either 'address' or 'sentinel', not both",
                          "t.yaml:10:15: missing required key 'master' in 'affinity_store.redis.sentinel'",
                          "t.yaml:10:28: 'addresses': bad address '10.0.0.1' (use e.g. 127.0.0.1:26379)",
                          "t.yaml:11:15: 'bind': bad address '127.0.0.1:99999' (use e.g. 127.0.0.1:9901)",
                          "t.yaml:12:31: 'trusted_proxies': bad address or CIDR '10.0.0.0/33' (use e.g. "
                          "10.0.0.0/8, 192.0.2.7 or fd00::/8)",
                          "t.yaml:12:46: 'trusted_proxies': bad address or CIDR a map (use e.g. 10.0.0.0/8, "
                          "192.0.2.7 or fd00::/8)"));
  auto r = load(std::string(kHead) +
                "affinity_store:\n"
                "  type: redis\n"
                "  redis: {sentinel: {addresses: [\"10.0.0.1:26379\", \"[::1]:26379\"], master: mymaster}, db: 3}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_EQ(r.config->affinity_store.type, StoreType::kRedis);
  EXPECT_THAT(r.config->affinity_store.redis.sentinel_addresses, ElementsAre("10.0.0.1:26379", "[::1]:26379"));
  EXPECT_EQ(r.config->affinity_store.redis.sentinel_master, "mymaster");
  EXPECT_EQ(r.config->affinity_store.redis.db, 3u);
}

TEST_F(ConfigLoaderTest, ManyErrorsAreAllReportedInOrder) {
  auto r = load("workers: 0\n"
                "listeners:\n"
                "  - {name: web, bind: \"127.0.0.1:80800\", backend: nope, tls: {certificates: certs/, alpn: [h3]}}\n"
                "backends:\n"
                "  - name: app\n"
                "    balanse: roundrobin\n"
                "    retries: -1\n"
                "    servers:\n"
                "      - {name: s1, address: \"127.0.0.1\", weight: 5000}\n"
                "limits: {max_body: 5x}\n");
  EXPECT_FALSE(r.config);
  EXPECT_THAT(errors_of(r),
              ElementsAre("t.yaml:1:10: 'workers': expected auto or a number from 1 to 1024, got '0'",
                          "t.yaml:3:23: 'bind': bad address '127.0.0.1:80800' (use e.g. 0.0.0.0:8443 or [::]:8443)",
                          "t.yaml:3:51: 'backend': no backend named 'nope' (defined: app)",
                          "t.yaml:3:92: 'alpn': unknown protocol 'h3' (use h2, http/1.1)",
                          "t.yaml:6:5: unknown key 'balanse' in backend 'app' (did you mean 'balance'?)",
                          "t.yaml:7:14: 'retries': must not be negative, got -1",
                          "t.yaml:9:29: 'address': bad address '127.0.0.1' (use e.g. 127.0.0.1:9001 or [::1]:9001, "
                          "port 1..65535; names other than localhost are not resolved)",
                          "t.yaml:9:50: 'weight': 5000 is out of range (0..1000)",
                          "t.yaml:10:20: 'max_body': bad size '5x' (use e.g. 512, 16KiB, 1MiB, 1GiB)"));
}

// ---------------------------------------------------------------------------
// Warnings: none for features this build acts on (the Redis store included)

TEST_F(ConfigLoaderTest, ImplementedFeaturesDoNotWarn) {
  write_text(dir_ / "s.txt", "k\n");
  auto r = load(std::string(kHead) +
                "    balance: leastconn\n"
                "    health_check: {type: none}\n"
                "    passive: {consecutive_failures: 2}\n"
                "    slow_start: 5s\n"
                "    persistence:\n"
                "      cookie: {mode: rewrite, max_idle: 1m, max_life: 1h, secret_file: s.txt}\n"
                "      learn: {cookie: JSESSIONID}\n"
                "      source: {}\n"
                "forwarded: {forwarded: true}\n"
                "affinity_store: {type: redis}\n"
                "admin: {bind: \"127.0.0.1:9901\"}\n"
                "access_log: {format: json}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_THAT(warnings_of(r), IsEmpty());
  EXPECT_EQ(r.config->affinity_store.type, StoreType::kRedis);
  EXPECT_THAT(r.config->backends[0].persistence.cookie->secrets, ElementsAre("k"));
  EXPECT_EQ(r.config->backends[0].balance, BalanceAlgorithm::kLeastConn);
}

TEST_F(ConfigLoaderTest, DefaultValuesWrittenOutDoNotWarn) {
  auto r = load(std::string(kHead) +
                "    balance: roundrobin\n"
                "    slow_start: 0s\n"
                "    persistence: {cookie: {mode: insert, max_idle: 0, max_life: 0s, secret_file: \"\"}}\n"
                "forwarded: {forwarded: false}\n"
                "affinity_store: {type: memory}\n"
                "access_log: {format: text}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_THAT(warnings_of(r), IsEmpty());
}

// ---------------------------------------------------------------------------
// parse_duration / parse_size

TEST(ParseDuration, Accepts) {
  EXPECT_EQ(parse_duration("250ms"), Duration(250));
  EXPECT_EQ(parse_duration("5s"), Duration(5000));
  EXPECT_EQ(parse_duration("30m"), Duration(30 * 60 * 1000));
  EXPECT_EQ(parse_duration("8h"), Duration(8 * 3600 * 1000));
  EXPECT_EQ(parse_duration("0"), Duration(0));
  EXPECT_EQ(parse_duration("0s"), Duration(0));
  EXPECT_EQ(parse_duration("0ms"), Duration(0));
  EXPECT_EQ(parse_duration("007s"), Duration(7000));
  // The largest accepted value: half of what int64 nanoseconds hold.
  EXPECT_EQ(parse_duration("4611686018427ms"), Duration(4611686018427));
}

TEST(ParseDuration, Rejects) {
  for (const char* bad : {"", "5", "s", "ms", "-1s", "+5s", "1.5s", "5 s", " 5s", "5s ", "5S", "5sec", "1d",
                          "5x", "1h30m", "4611686018428ms", "1281023895h", "99999999999999999999s",
                          "18446744073709551616ms"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(ParseSize, Accepts) {
  EXPECT_EQ(parse_size("512"), 512u);
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("16KiB"), 16u * 1024);
  EXPECT_EQ(parse_size("1MiB"), 1024u * 1024);
  EXPECT_EQ(parse_size("1GiB"), uint64_t{1} << 30);
  EXPECT_EQ(parse_size("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parse_size("17179869183GiB"), uint64_t{17179869183} << 30);
}

TEST(ParseSize, Rejects) {
  for (const char* bad : {"", "KiB", "16kb", "16KB", "16k", "16kib", "16 KiB", "-1", "+1", "1.5MiB", "1TiB",
                          "18446744073709551616", "17179869184GiB", "16KiBs", "0x10"})
    EXPECT_FALSE(parse_size(bad)) << bad;
}

TEST(ConfigError, Format) {
  EXPECT_EQ((ConfigError{"conf/gw.yaml", 3, 14, "boom"}.to_string()), "conf/gw.yaml:3:14: boom");
  EXPECT_EQ((ConfigError{"gw.yaml", 0, 0, "cannot read"}.to_string()), "gw.yaml: cannot read");
}

TEST(EnumNames, MatchTheYamlSpelling) {
  EXPECT_STREQ(to_string(BalanceAlgorithm::kRoundRobin), "roundrobin");
  EXPECT_STREQ(to_string(BalanceAlgorithm::kLeastConn), "leastconn");
  EXPECT_STREQ(to_string(BalanceAlgorithm::kLeastTime), "least_time");
  EXPECT_STREQ(to_string(BalanceAlgorithm::kSource), "source");
  EXPECT_STREQ(to_string(BalanceAlgorithm::kHash), "hash");
  EXPECT_STREQ(to_string(BalanceAlgorithm::kRandom), "random");
  EXPECT_STREQ(to_string(CookieMode::kInsert), "insert");
  EXPECT_STREQ(to_string(CookieMode::kRewrite), "rewrite");
  EXPECT_STREQ(to_string(CookieMode::kPrefix), "prefix");
  EXPECT_STREQ(to_string(SameSite::kLax), "Lax");
  EXPECT_STREQ(to_string(SameSite::kStrict), "Strict");
  EXPECT_STREQ(to_string(SameSite::kNone), "None");
}

// ---------------------------------------------------------------------------
// Files the gateway writes: pid_file, affinity_store.state_file

TEST_F(ConfigLoaderTest, OutputPathsResolveAgainstTheConfigDirectory) {
  fs::create_directory(dir_ / "run");
  auto r = load(std::string(kHead) +
                "pid_file: run/sag.pid\n"
                "affinity_store: {type: memory, state_file: run/affinity.state}\n");
  ASSERT_THAT(errors_of(r), IsEmpty());
  EXPECT_EQ(r.config->pid_file, (dir_ / "run" / "sag.pid").string());
  EXPECT_EQ(r.config->affinity_store.state_file, (dir_ / "run" / "affinity.state").string());
  auto none = load(std::string(kHead) + "affinity_store: {state_file: \"\"}\n");
  ASSERT_THAT(errors_of(none), IsEmpty());
  EXPECT_EQ(none.config->pid_file, "");
  EXPECT_EQ(none.config->affinity_store.state_file, "");
}

TEST_F(ConfigLoaderTest, OutputPathsNeedAnExistingFolderAndStateFileAMemoryStore) {
  const std::string missing = (dir_ / "nope").string();
  EXPECT_THAT(head_errors("pid_file: nope/sag.pid\n"),
              ElementsAre("t.yaml:7:11: 'pid_file': no such directory: " + missing));
  EXPECT_THAT(head_errors("affinity_store:\n  state_file: nope/a.state\n"),
              ElementsAre("t.yaml:8:15: 'state_file': no such directory: " + missing));
  EXPECT_THAT(head_errors("affinity_store:\n  type: redis\n  state_file: a.state\n"),
              ElementsAre("t.yaml:9:15: 'state_file': only for type: memory (Redis keeps the entries)"));
}

}  // namespace
}  // namespace sag::config
