// What every section reader of the schema shares: where errors go, how
// relative paths resolve, and the checks that span sections.
#pragma once

#include <string>
#include <utility>

#include "config/config_error.h"
#include "config/cross_checks.h"
#include "config/yaml_reader.h"

namespace sag::config {

class SchemaContext {
 public:
  SchemaContext(ErrorLog& log, std::string base_dir) : log_(log), base_dir_(std::move(base_dir)), checks_(log) {}

  ErrorLog& log() { return log_; }
  CrossChecks& checks() { return checks_; }
  void error(Pos p, std::string message) { log_.error(p, std::move(message)); }

  // A path from the file, made relative to the config file's directory.
  std::string resolve(const std::string& path) const;

  // Reads `key` (a file name) into `file` and the file's first line into
  // `secret` (a password, a key secret); reports an unreadable file or an
  // empty first line.
  void read_secret_line(YamlReader& r, std::string& file, std::string& secret, const char* key = "password_file");

  // Reads `key`, a file the gateway writes (pid file, state file), into
  // `path`, resolved. The file may be missing, its folder must exist: a typo
  // shows at load, not when the file is first written. True when a path
  // was read and its folder exists.
  bool read_output_path(YamlReader& r, const char* key, std::string& path);

 private:
  ErrorLog& log_;
  std::string base_dir_;
  CrossChecks checks_;
};

}  // namespace sag::config
