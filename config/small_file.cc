#include "config/small_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace sag::config {

std::optional<std::string> read_small_file(const std::string& path, std::string& why, size_t max_bytes) {
  namespace fs = std::filesystem;
  // Regular files only: a FIFO or a device named by mistake would block the
  // load or never end it.
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec) {
    why = ec.message();
    return std::nullopt;
  }
  if (!fs::is_regular_file(st)) {
    why = "not a regular file";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = std::strerror(errno);
    return std::nullopt;
  }
  std::string data(max_bytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.bad()) {
    why = "read error";
    return std::nullopt;
  }
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > max_bytes) {
    why = "larger than " + std::to_string(max_bytes) + " bytes";
    return std::nullopt;
  }
  return data;
}

}  // namespace sag::config
