// sag: a session-affinity gateway. Command line per docs/behaviour.md#signals.
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <signal.h>

#include <boost/version.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <hiredis/hiredis.h>
#include <nghttp2/nghttp2.h>

#include "config/config_loader.h"
#include "gateway/gateway.h"
#include "gateway/log.h"
#include "tls/keylog_hex.h"
#include "tls/openssl_memory.h"

#ifndef SAG_VERSION
#define SAG_VERSION "0.0.0"
#endif

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: gateway --config FILE [--pid-file PATH]  run\n"
               "       gateway --check --config FILE  validate the config and exit (0 ok, 1 errors)\n"
               "       gateway --version            print versions\n");
}

void print_version() {
  const nghttp2_info* ng = nghttp2_version(0);
  std::printf("sag %s (OpenSSL %s, nghttp2 %s, Boost %d.%d.%d, hiredis %d.%d.%d)\n", SAG_VERSION,
              OpenSSL_version(OPENSSL_VERSION_STRING), ng ? ng->version_str : "?",
              BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100,
              HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
  std::printf("built with OpenSSL %s, nghttp2 %s\n", OPENSSL_FULL_VERSION_STR, NGHTTP2_VERSION);
}

}  // namespace

int main(int argc, char** argv) {
  const bool openssl_routed = sag::tls::route_openssl_memory();
  std::string config_path;
  std::string pid_file;  // --pid-file: over the config's pid_file
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--pid-file" && i + 1 < argc) {
      pid_file = argv[++i];
    } else if (a.rfind("--pid-file=", 0) == 0) {
      pid_file = a.substr(11);
    } else if (a == "--check") {
      check = true;
    } else if (a == "--version") {
      print_version();
      return 0;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "gateway: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (config_path.empty()) {
    usage(stderr);
    return 2;
  }
  // Writes to a closed client socket must be errors, not a dead process.
  ::signal(SIGPIPE, SIG_IGN);

  auto result = sag::config::ConfigLoader::load_file(config_path);
  // Compiler-style "warning:" so tools that parse FILE:LINE:COL can tell
  // these apart from errors.
  for (const auto& w : result.warnings)
    std::fprintf(stderr, "%s:%d:%d: warning: %s\n", w.file.c_str(), w.line, w.column,
                 w.message.c_str());
  if (!result.errors.empty()) {
    for (const auto& e : result.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 1;
  }
  if (check) {
    auto errors = sag::gateway::Gateway::check_runtime(*result.config);
    for (const auto& e : errors) std::fprintf(stderr, "%s: %s\n", config_path.c_str(), e.c_str());
    if (!errors.empty()) return 1;
    std::fprintf(stderr, "%s: ok\n", config_path.c_str());
    return 0;
  }
  if (!openssl_routed)
    sag::gateway::log_warning("OpenSSL's heap could not be routed through the worker caches; "
                              "TLS requests will allocate");
  if (!sag::tls::keylog_hex_bound())
    sag::gateway::log_warning("OpenSSL's keylog lines go through glibc's printf; "
                              "full TLS handshakes cost about 8 % more");
  // --pid-file overrides the config's, at start and at every reload.
  const auto with_cli = [pid_file](std::shared_ptr<const sag::config::GatewayConfig> c) {
    if (pid_file.empty()) return c;
    auto with_pid = std::make_shared<sag::config::GatewayConfig>(*c);
    with_pid->pid_file = pid_file;
    return std::shared_ptr<const sag::config::GatewayConfig>(std::move(with_pid));
  };
  // SIGHUP: the file again, as at start; warnings logged, errors returned.
  sag::gateway::Reloader::Loader loader = [config_path, with_cli](std::vector<std::string>& errors) {
    auto again = sag::config::ConfigLoader::load_file(config_path);
    for (const auto& w : again.warnings)
      sag::gateway::log_warning("SIGHUP: " + w.file + ":" + std::to_string(w.line) + ":" +
                                std::to_string(w.column) + ": warning: " + w.message);
    for (const auto& e : again.errors) errors.push_back(e.to_string());
    if (!again.errors.empty() || !again.config) return std::shared_ptr<const sag::config::GatewayConfig>();
    return with_cli(again.config);
  };
  return sag::gateway::Gateway::run(with_cli(result.config), std::vector<std::string>(argv, argv + argc),
                                    std::move(loader));
}
