#include "session/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>

#include "config/base/socket_readiness.h"

namespace sag::session {

UpstreamPool::UpstreamPool(size_t server_count, const config::PoolConfig& config)
    : config_(config), idle_(server_count) {}

void UpstreamPool::reconfigure(size_t server_count, const config::PoolConfig& config) {
  config_ = config;
  if (idle_.size() < server_count) idle_.resize(server_count);
}

bool UpstreamPool::still_open(Socket& s) {
  // An idle HTTP/1.1 server connection must have nothing to read: EOF means
  // the server closed it, data means it is out of step. Only "would block"
  // is healthy. The reactor knows that without a system call when the
  // response's last read drained the socket and no event came since.
  if (!base::maybe_readable(s)) return true;
  char c;
  ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

UpstreamPool::SocketPtr UpstreamPool::take(uint32_t index, Clock::time_point now) {
  auto& list = idle_[index];
  while (!list.empty()) {
    Idle idle = std::move(list.back());
    list.pop_back();
    // Checked whatever its age: a server that wrote past its response a
    // moment ago has to lose the connection now, not once it idled long.
    if (now - idle.since < config_.idle_timeout && still_open(*idle.socket))
      return std::move(idle.socket);
    boost::system::error_code ignored;
    idle.socket->close(ignored);
  }
  return nullptr;
}

void UpstreamPool::give_back(uint32_t index, SocketPtr socket, Clock::time_point now) {
  auto& list = idle_[index];
  boost::system::error_code ignored;
  if (list.size() >= config_.max_idle_per_server) {
    // Keep the warm ones; drop the oldest.
    if (list.empty()) {
      socket->close(ignored);
      return;
    }
    list.front().socket->close(ignored);
    list.erase(list.begin());
  }
  list.push_back(Idle{std::move(socket), now});
}

void UpstreamPool::drop(uint32_t index) {
  boost::system::error_code ignored;
  for (auto& idle : idle_[index]) idle.socket->close(ignored);
  idle_[index].clear();
}

void UpstreamPool::sweep(Clock::time_point now) {
  boost::system::error_code ignored;
  for (auto& list : idle_) {
    size_t keep = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      if (now - list[i].since < config_.idle_timeout && still_open(*list[i].socket)) {
        if (keep != i) list[keep] = std::move(list[i]);
        ++keep;
      } else {
        list[i].socket->close(ignored);
      }
    }
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(keep), list.end());
  }
}

void UpstreamPool::close_all() {
  boost::system::error_code ignored;
  for (auto& list : idle_) {
    for (auto& idle : list) idle.socket->close(ignored);
    list.clear();
  }
}

size_t UpstreamPool::idle_count() const {
  size_t n = 0;
  for (const auto& list : idle_) n += list.size();
  return n;
}

}  // namespace sag::session
