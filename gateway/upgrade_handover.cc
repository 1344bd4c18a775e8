#include "gateway/upgrade_handover.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace sag::gateway {

namespace {

constexpr const char* kListenVar = "SAG_LISTEN_FDS";
constexpr const char* kChannelVar = "SAG_UPGRADE_FD";

int parse_fd(std::string_view s) {
  int fd = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), fd);
  return ec == std::errc() && end == s.data() + s.size() && fd > 2 ? fd : -1;
}

// Reads exactly n bytes, waiting at most timeout_ms for each chunk (-1:
// forever). False on EOF, error or timeout.
bool read_exact(int fd, char* p, size_t n, int timeout_ms) {
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    const int r = ::poll(&pfd, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    const ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

}  // namespace

std::string listen_key(const boost::asio::ip::tcp::endpoint& ep) {
  const auto a = ep.address();
  std::string key;
  if (a.is_v6()) key += '[';
  key += a.to_string();
  if (a.is_v6()) key += ']';
  key += ':';
  key += std::to_string(ep.port());
  return key;
}

void UpgradeHandover::read_environment() {
  if (const char* v = std::getenv(kListenVar)) {
    // KEY=FD,FD;KEY=FD; (keys hold no ';', and their last '=' ends them)
    std::istringstream items{std::string(v)};
    std::string item;
    while (std::getline(items, item, ';')) {
      const size_t eq = item.rfind('=');
      if (eq == std::string::npos) continue;
      std::istringstream fds(item.substr(eq + 1));
      std::string fd_text;
      while (std::getline(fds, fd_text, ',')) {
        const int fd = parse_fd(fd_text);
        if (fd < 0) continue;
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // ours now; a later upgrade passes it on explicitly
        fds_[item.substr(0, eq)].push_back(fd);
      }
    }
    ::unsetenv(kListenVar);
  }
  if (const char* v = std::getenv(kChannelVar)) {
    channel_ = parse_fd(v);
    if (channel_ >= 0) ::fcntl(channel_, F_SETFD, FD_CLOEXEC);
    ::unsetenv(kChannelVar);
  }
}

UpgradeHandover::~UpgradeHandover() {
  close_unclaimed();
  // Wakes the reader if the old process hasn't closed its end yet.
  if (channel_ >= 0) ::shutdown(channel_, SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
  if (channel_ >= 0) ::close(channel_);
}

std::vector<int> UpgradeHandover::take(const std::string& key) {
  auto it = fds_.find(key);
  if (it == fds_.end()) return {};
  std::vector<int> out = std::move(it->second);
  fds_.erase(it);
  return out;
}

void UpgradeHandover::close_unclaimed() {
  for (auto& [key, fds] : fds_)
    for (int fd : fds) ::close(fd);
  fds_.clear();
}

bool UpgradeHandover::read_store_key(affinity::MemoryAffinityStore::HashKey& key) {
  if (channel_ < 0) return false;
  unsigned char b[16];
  if (!read_exact(channel_, reinterpret_cast<char*>(b), sizeof b, 5000)) return false;
  key = {};
  for (int i = 0; i < 8; ++i) key.k0 |= static_cast<uint64_t>(b[i]) << (8 * i);
  for (int i = 0; i < 8; ++i) key.k1 |= static_cast<uint64_t>(b[8 + i]) << (8 * i);
  return true;
}

namespace {

bool read_framed(int fd, std::string& image, int timeout_ms) {
  unsigned char len[8];
  if (!read_exact(fd, reinterpret_cast<char*>(len), sizeof len, timeout_ms)) return false;
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (n > (uint64_t{1} << 36)) return false;  // not an image of any store
  image.assign(n, '\0');
  return read_exact(fd, image.data(), n, 30000);
}

}  // namespace

bool UpgradeHandover::read_image(std::string& image) {
  if (channel_ < 0) return false;
  const char s = 'S';
  while (::write(channel_, &s, 1) < 0 && errno == EINTR) {
  }
  return read_framed(channel_, image, 10000);
}

void UpgradeHandover::ready() {
  if (channel_ < 0) return;
  const char r = 'R';
  while (::write(channel_, &r, 1) < 0 && errno == EINTR) {
  }
}

void UpgradeHandover::receive(std::function<void(const std::string&)> on_image) {
  if (channel_ < 0 || reader_.joinable()) return;
  reader_ = std::thread([fd = channel_, on_image = std::move(on_image)] {
    std::string image;
    while (read_framed(fd, image, -1)) on_image(image);
  });
}

}  // namespace sag::gateway
