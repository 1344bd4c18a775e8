#include "gateway/pid_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sag::gateway {

bool PidFile::write(const std::string& path, std::string& error) {
  const std::string text = std::to_string(::getpid()) + "\n";
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = tmp + ": " + std::strerror(errno);
    return false;
  }
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = (ok ? path : tmp) + ": " + std::strerror(ok ? errno : saved);
    ::unlink(tmp.c_str());
    return false;
  }
  path_ = path;
  written_ = text;
  return true;
}

void PidFile::remove() {
  if (path_.empty()) return;
  char buf[32];
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    if (n > 0 && std::string(buf, static_cast<size_t>(n)) == written_) ::unlink(path_.c_str());
  }
  path_.clear();
}

}  // namespace sag::gateway
