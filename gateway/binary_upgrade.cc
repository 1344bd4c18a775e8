#include "gateway/binary_upgrade.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include <boost/asio/read.hpp>

extern char** environ;

namespace sag::gateway {

namespace asio = boost::asio;

namespace {

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string exit_text(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

std::string BinaryUpgrade::executable_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

BinaryUpgrade::BinaryUpgrade(asio::io_context& io, std::vector<std::string> argv)
    : io_(io), argv_(std::move(argv)), exe_(executable_path()) {}

BinaryUpgrade::~BinaryUpgrade() { finish(); }

bool BinaryUpgrade::start(const Sockets& sockets, const affinity::MemoryAffinityStore::HashKey* key,
                          std::function<void()> on_entries, std::function<void(pid_t)> on_ready,
                          std::function<void(std::string)> on_failed, std::string& error) {
  if (channel_) {
    error = "an upgrade is already under way (new process " + std::to_string(child_) + ")";
    return false;
  }
  if (exe_.empty() || argv_.empty()) {
    error = "the executable's path is unknown";
    return false;
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    error = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls (this process has other threads).
  std::map<std::string, std::string> groups;
  std::vector<int> inherit{sv[1]};
  for (const auto& [k, fd] : sockets.listening) {
    std::string& g = groups[k];
    g += (g.empty() ? "" : ",") + std::to_string(fd);
    inherit.push_back(fd);
  }
  std::string listen = "SAG_LISTEN_FDS=";
  for (const auto& [k, g] : groups) listen += k + "=" + g + ";";
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string_view v(*e);
    if (v.starts_with("SAG_LISTEN_FDS=") || v.starts_with("SAG_UPGRADE_FD=")) continue;
    env.emplace_back(v);
  }
  env.push_back(listen);
  env.push_back("SAG_UPGRADE_FD=" + std::to_string(sv[1]));
  std::vector<char*> envp, argvp;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& s : argv_) argvp.push_back(s.data());
  argvp.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  const long open_max = ::sysconf(_SC_OPEN_MAX);
  const int max_fd = open_max > 0 && open_max < (1 << 20) ? static_cast<int>(open_max) : (1 << 20);

  const pid_t pid = ::fork();
  if (pid < 0) {
    error = std::string("fork: ") + std::strerror(errno);
    ::close(sv[0]);
    ::close(sv[1]);
    return false;
  }
  if (pid == 0) {
    // Nothing else of this process goes along: a client connection open
    // here would otherwise stay open in the new process after this one
    // closed it, and its client would wait forever.
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    for (int fd : inherit) {
      const int flags = ::fcntl(fd, F_GETFD);
      if (flags >= 0) ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(exe_.c_str(), argvp.data(), envp.data());
    ::_exit(127);
  }
  ::close(sv[1]);
  child_ = pid;
  asked_ = false;
  // The key first (the child reads it before its store is used); a
  // socket's buffer takes 16 bytes without waiting.
  unsigned char b[16] = {};
  if (key) {
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(key->k0 >> (8 * i));
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<unsigned char>(key->k1 >> (8 * i));
  }
  write_all(sv[0], reinterpret_cast<const char*>(b), sizeof b);
  channel_ = std::make_unique<asio::posix::stream_descriptor>(io_, sv[0]);
  on_entries_ = std::move(on_entries);
  on_ready_ = std::move(on_ready);
  on_failed_ = std::move(on_failed);
  watch();
  return true;
}

void BinaryUpgrade::watch() {
  asio::async_read(*channel_, asio::buffer(&byte_, 1),
                   [this](const boost::system::error_code& ec, size_t) {
                     if (!channel_) return;
                     if (!ec && byte_ == 'S' && !asked_) {
                       asked_ = true;
                       on_entries_();
                       if (channel_) watch();
                       return;
                     }
                     if (!ec && byte_ == 'R' && asked_) {
                       on_ready_(child_);
                       return;
                     }
                     failed(ec ? "it exited before serving" : "it sent an unknown message");
                   });
}

void BinaryUpgrade::failed(const std::string& why) {
  channel_.reset();
  // The child closed its end: it is exiting. Reap it (bounded).
  int status = 0;
  std::string how;
  for (int i = 0; i < 100; ++i) {
    const pid_t r = ::waitpid(child_, &status, WNOHANG);
    if (r == child_) {
      how = " (" + exit_text(status) + ")";
      break;
    }
    if (r < 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const pid_t pid = child_;
  child_ = -1;
  auto on_failed = std::move(on_failed_);
  on_failed("new process " + std::to_string(pid) + ": " + why + how);
}

bool BinaryUpgrade::send_image(const std::string& image) {
  if (!channel_ || !asked_) return false;
  const int fd = channel_->native_handle();
  // Blocking for this write: the reader takes the bytes as they come.
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>(static_cast<uint64_t>(image.size()) >> (8 * i));
  const bool ok = write_all(fd, len, sizeof len) && write_all(fd, image.data(), image.size());
  ::fcntl(fd, F_SETFL, flags);
  return ok;
}

void BinaryUpgrade::finish() {
  if (!channel_) return;
  boost::system::error_code ignored;
  channel_->close(ignored);
  channel_.reset();
}

}  // namespace sag::gateway
