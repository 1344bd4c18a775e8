#include "config/small_file.h"

#include <algorithm>
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
  // Sized from the file, not from the limit (a buffer of max_bytes would be
  // zeroed, its pages touched, on every load), and grown while the file
  // has more than it said (it grew, or it is one that reports size 0). One
  // byte more than the limit tells a file past it.
  const auto size = fs::file_size(path, ec);
  std::string data(std::min<uintmax_t>(ec ? 4096 : size, max_bytes) + 1, '\0');
  size_t got = 0;
  for (;;) {
    in.read(data.data() + got, static_cast<std::streamsize>(data.size() - got));
    got += static_cast<size_t>(in.gcount());
    if (in.bad()) {
      why = "read error";
      return std::nullopt;
    }
    if (got < data.size() || data.size() > max_bytes) break;
    data.resize(std::min(data.size() * 2, max_bytes + 1));
  }
  data.resize(got);
  if (data.size() > max_bytes) {
    why = "larger than " + std::to_string(max_bytes) + " bytes";
    return std::nullopt;
  }
  return data;
}

}  // namespace sag::config
