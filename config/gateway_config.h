// The gateway's configuration as plain, immutable data (docs/configuration.md).
//
// A GatewayConfig is built once by ConfigLoader, validated, and then shared
// read-only between threads as shared_ptr<const GatewayConfig>; a reload
// builds a new one. Nothing here does I/O or holds sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/cidr.h"
#include "config/endpoint.h"
#include "config/hash_key.h"

namespace sag::config {

using Duration = std::chrono::milliseconds;

enum class BalanceAlgorithm { kRoundRobin, kLeastConn, kLeastTime, kSource, kHash, kRandom };
enum class CookieMode { kInsert, kRewrite, kPrefix };
enum class SecureFlag { kAuto, kOn, kOff };
enum class SameSite { kLax, kStrict, kNone };
enum class HealthCheckType { kHttp, kTcp, kRedis, kNone };
// health_check.type redis: the role a server must have to be up.
enum class RedisRole { kAny, kMaster, kReplica };
enum class StoreType { kMemory, kRedis };
// What a listener speaks and a backend's servers get (SPEC §8): HTTP, or
// bytes relayed both ways.
enum class ProxyMode { kHttp, kTcp };
// tcp backends: a PROXY protocol header to each server, or none.
enum class ProxyProtocol { kNone, kV2 };
// tcp backends: what happens to a server's open connections when it goes
// down or into maint.
enum class OnDown { kKeep, kClose };
enum class LogFormat { kText, kJson };

const char* to_string(BalanceAlgorithm a);
const char* to_string(CookieMode m);
const char* to_string(SameSite s);

// The largest server weight (config `weight`, the admin API, the shared
// admin state): the one definition (affinity::kMaxWeight names it).
inline constexpr uint32_t kMaxWeight = 1000;

struct ServerConfig {
  std::string name;
  std::string address;  // as written
  Endpoint endpoint;    // parsed from address
  uint32_t weight = 100;  // 0..kMaxWeight
  bool backup = false;
};

struct HealthCheckConfig {
  HealthCheckType type = HealthCheckType::kTcp;
  std::string path = "/";
  std::string host;
  uint16_t expect_status_min = 200;
  uint16_t expect_status_max = 399;
  Duration interval{2000};
  Duration timeout{1000};
  uint32_t rise = 2;
  uint32_t fall = 3;
  // type redis only.
  RedisRole role = RedisRole::kAny;
  std::string password_file;  // resolved
  std::string password;       // its first line
};

struct PassiveConfig {
  uint32_t consecutive_failures = 5;
  Duration eject_for{30000};
};

struct CookieConfig {
  std::string name = "SRV";
  CookieMode mode = CookieMode::kInsert;
  std::string app_cookie;  // mode: prefix
  std::string path = "/";
  std::string domain;
  SecureFlag secure = SecureFlag::kAuto;
  bool http_only = true;
  SameSite same_site = SameSite::kLax;
  Duration max_age{0};   // 0 = session cookie
  Duration max_idle{30 * 60 * 1000};  // 0 = none (documented default 30m)
  Duration max_life{8 * 60 * 60 * 1000};  // 0 = none (documented default 8h)
  std::string secret_file;           // as written (resolved against the config's dir)
  std::vector<std::string> secrets;  // loaded from secret_file; [0] signs
};

struct LearnConfig {
  std::string cookie;
  Duration ttl{30 * 60 * 1000};
};

struct SourceConfig {
  uint32_t ipv4_mask = 32;
  uint32_t ipv6_mask = 64;
  Duration ttl{30 * 60 * 1000};
};

struct PersistenceConfig {
  // Absent persistence section: cookie {name: SRV, mode: insert} alone.
  std::optional<CookieConfig> cookie = CookieConfig{};
  std::optional<LearnConfig> learn;
  std::optional<SourceConfig> source;
};

struct PoolConfig {
  uint32_t max_idle_per_server = 64;
  Duration idle_timeout{60000};
};

struct BackendConfig {
  std::string name;
  ProxyMode mode = ProxyMode::kHttp;
  BalanceAlgorithm balance = BalanceAlgorithm::kRoundRobin;
  std::string hash_key;  // as written: "header:NAME", "cookie:NAME", "path", "source"
  HashKey hash;          // parsed from hash_key; kNone when absent
  std::vector<ServerConfig> servers;
  HealthCheckConfig health_check;
  std::optional<PassiveConfig> passive;  // absent = off
  Duration slow_start{0};                // 0 = off
  PersistenceConfig persistence;
  bool redispatch = true;
  uint32_t retries = 2;
  Duration connect_timeout{2000};
  Duration server_timeout{30000};
  // tcp: no byte either way for this long closes the connection.
  Duration idle_timeout{30 * 60 * 1000};
  ProxyProtocol proxy_protocol = ProxyProtocol::kNone;  // tcp only
  OnDown on_down = OnDown::kKeep;                      // tcp only
  PoolConfig pool;
};

struct TlsCertificateFiles {
  std::string cert;  // resolved path
  std::string key;   // resolved path
};

struct TlsConfig {
  // Either a directory (resolved path) or a list of files; the loader fills
  // exactly one of the two. ServerTlsContext expands the directory.
  std::string certificates_dir;
  std::vector<TlsCertificateFiles> certificate_files;
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  int min_version = 0x0303;  // TLS1_2_VERSION or TLS1_3_VERSION
  bool session_tickets = true;
};

struct RouteConfig {
  std::string host;         // empty = any; "*.example.com" allowed
  std::string path_prefix;  // empty = any
  std::string backend;
};

struct ListenerConfig {
  std::string name;
  std::string bind;  // as written
  Endpoint endpoint;
  ProxyMode mode = ProxyMode::kHttp;
  std::optional<TlsConfig> tls;
  std::string backend;               // the default backend (may be empty with routes)
  std::vector<RouteConfig> routes;   // checked in order, then `backend`
  std::optional<uint16_t> redirect_https;  // plain listeners only
};

struct ForwardedConfig {
  std::vector<Cidr> trusted_proxies;
  bool x_forwarded_for = true;
  bool x_forwarded_proto = true;
  bool x_forwarded_host = true;
  bool forwarded = false;
};

struct RedisConfig {
  std::string address = "127.0.0.1:6379";
  std::vector<std::string> sentinel_addresses;
  std::string sentinel_master;
  std::string password_file;
  std::string password;  // loaded from password_file
  std::string key_prefix = "gw:";
  // Affinity keys in Redis are keyed hashes under this secret (the file's
  // first line); empty: a cookie secret_file's first secret, else none.
  std::string key_secret_file;
  std::string key_secret;  // loaded from key_secret_file
  uint32_t db = 0;
  Duration timeout{200};
};

struct AffinityStoreConfig {
  StoreType type = StoreType::kMemory;
  uint64_t capacity = 1000000;
  RedisConfig redis;
  std::string state_file;  // resolved path; empty: none (memory store only)
};

struct LimitsConfig {
  uint64_t max_connections = 100000;
  uint64_t max_header_bytes = 32 * 1024;
  uint32_t max_headers = 100;
  uint64_t max_request_line = 8 * 1024;
  uint64_t max_body = 0;  // 0 = unlimited
  uint32_t h2_max_concurrent_streams = 100;
};

struct TimeoutsConfig {
  Duration client{30000};
  Duration http_request{10000};
  Duration keepalive{60000};
  Duration shutdown{30000};
};

struct AdminConfig {
  std::string bind;
  Endpoint endpoint;
  std::string user;
  std::string password_file;
  std::string password;  // loaded from password_file; empty = no auth
};

struct AccessLogConfig {
  std::string path = "-";  // "-" = stdout, empty = off
  LogFormat format = LogFormat::kText;
};

struct GatewayConfig {
  std::string source_path;  // the file as given on the command line
  uint32_t workers = 0;     // 0 = auto (one per core)
  std::string pid_file;     // resolved; empty: none (--pid-file overrides)
  std::vector<ListenerConfig> listeners;
  std::vector<BackendConfig> backends;
  ForwardedConfig forwarded;
  AffinityStoreConfig affinity_store;
  LimitsConfig limits;
  TimeoutsConfig timeouts;
  std::optional<AdminConfig> admin;
  AccessLogConfig access_log;

  // Lookup helpers; nullptr when absent. O(n) over a handful of entries.
  const BackendConfig* find_backend(std::string_view name) const;
};

}  // namespace sag::config
