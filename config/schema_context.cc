#include "config/schema_context.h"

#include <filesystem>

#include "config/small_file.h"

namespace sag::config {

std::string SchemaContext::resolve(const std::string& path) const {
  namespace fs = std::filesystem;
  if (path.empty() || base_dir_.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base_dir_) / path).string();
}

void SchemaContext::read_secret_line(YamlReader& r, std::string& file, std::string& secret, const char* key) {
  if (!r.read(key, file) || file.empty()) return;
  const std::string path = resolve(file);
  const std::string what = std::string("'") + key + "': ";
  std::string why;
  auto text = read_small_file(path, why, 64 * 1024);
  if (!text) {
    error(r.at(key), what + "cannot read " + quote_path(path) + ": " + why);
    return;
  }
  secret = text->substr(0, text->find('\n'));
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  // An empty password would quietly mean "no auth" where auth was asked for
  // (an empty secret, "no secret").
  if (secret.empty()) error(r.at(key), what + "the first line of " + quote_path(path) + " is empty");
}

bool SchemaContext::read_output_path(YamlReader& r, const char* key, std::string& path) {
  if (!r.has(key) || !r.read(key, path) || path.empty()) return false;
  path = resolve(path);
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
    error(r.at(key), std::string("'") + key + "': no such directory: " + dir.string());
    return false;
  }
  return true;
}

}  // namespace sag::config
