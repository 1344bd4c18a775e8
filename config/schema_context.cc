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

}  // namespace sag::config
