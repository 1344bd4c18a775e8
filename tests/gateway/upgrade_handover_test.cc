// The new process's side of a binary upgrade (gateway/upgrade_handover.h):
// what it reads from the environment, and the channel's framing.
#include "gateway/upgrade_handover.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <vector>
#include <string>

namespace sag::gateway {
namespace {

namespace asio = boost::asio;

int open_fd() { return ::open("/dev/null", O_RDONLY); }

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

TEST(UpgradeHandover, ListenKeysNameTheBoundAddress) {
  EXPECT_EQ(listen_key({asio::ip::make_address("127.0.0.1"), 8443}), "127.0.0.1:8443");
  EXPECT_EQ(listen_key({asio::ip::make_address("::1"), 80}), "[::1]:80");
}

TEST(UpgradeHandover, TakesTheSocketsByKeyAndClosesTheRest) {
  const int a = open_fd(), b = open_fd(), c = open_fd(), d = open_fd();
  const std::string env = "127.0.0.1:80=" + std::to_string(a) + "," + std::to_string(b) +
                          ";[::1]:443=" + std::to_string(c) + ";admin=" + std::to_string(d) +
                          ";junk;x=1,notanumber;";
  ::setenv("SAG_LISTEN_FDS", env.c_str(), 1);
  UpgradeHandover h;
  h.read_environment();
  EXPECT_EQ(std::getenv("SAG_LISTEN_FDS"), nullptr) << "a later upgrade must not see it";
  EXPECT_FALSE(h.upgrading());
  EXPECT_EQ(h.take("127.0.0.1:80"), (std::vector<int>{a, b}));
  EXPECT_TRUE(h.take("127.0.0.1:80").empty()) << "each socket is given once";
  EXPECT_EQ(h.take("admin"), (std::vector<int>{d}));
  EXPECT_TRUE(h.take("127.0.0.1:81").empty());
  EXPECT_TRUE(::fcntl(a, F_GETFD) & FD_CLOEXEC);
  h.close_unclaimed();
  EXPECT_FALSE(is_open(c)) << "a listener gone from the config: its socket closes";
  EXPECT_TRUE(is_open(a));
  for (int fd : {a, b, d}) ::close(fd);
}

TEST(UpgradeHandover, ChannelCarriesKeyEntriesAndReadiness) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ::setenv("SAG_UPGRADE_FD", std::to_string(sv[1]).c_str(), 1);
  UpgradeHandover h;
  h.read_environment();
  ASSERT_TRUE(h.upgrading());
  // The old side: key, then (asked) one image, then (ready) another.
  const unsigned char key[16] = {1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0};
  ASSERT_EQ(::write(sv[0], key, 16), 16);
  affinity::MemoryAffinityStore::HashKey k;
  ASSERT_TRUE(h.read_store_key(k));
  EXPECT_EQ(k.k0, 1u);
  EXPECT_EQ(k.k1, 2u);
  auto frame = [](const std::string& image) {
    std::string f(8, '\0');
    for (int i = 0; i < 8; ++i) f[i] = static_cast<char>(image.size() >> (8 * i));
    return f + image;
  };
  const std::string first = frame("first image");
  ASSERT_EQ(::write(sv[0], first.data(), first.size()), static_cast<ssize_t>(first.size()));
  std::string image;
  ASSERT_TRUE(h.read_image(image));
  EXPECT_EQ(image, "first image");
  char c = 0;
  ASSERT_EQ(::read(sv[0], &c, 1), 1);
  EXPECT_EQ(c, 'S');
  h.ready();
  ASSERT_EQ(::read(sv[0], &c, 1), 1);
  EXPECT_EQ(c, 'R');
  std::vector<std::string> got;
  std::mutex mu;
  h.receive([&](const std::string& i) {
    std::lock_guard lock(mu);
    got.push_back(i);
  });
  const std::string second = frame("second") + frame("");
  ASSERT_EQ(::write(sv[0], second.data(), second.size()), static_cast<ssize_t>(second.size()));
  ::close(sv[0]);  // the old process is done: the reader ends
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(mu);
      if (got.size() == 2) break;
    }
    ::usleep(10000);
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(got, (std::vector<std::string>{"second", ""}));
}

TEST(UpgradeHandover, AStalledOldProcessDoesNotHoldTheNewOneAtExit) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ::setenv("SAG_UPGRADE_FD", std::to_string(sv[1]).c_str(), 1);
  {
    UpgradeHandover h;
    h.read_environment();
    h.receive([](const std::string&) {});
  }  // joins its reader although the old side never closed
  ::close(sv[0]);
}

}  // namespace
}  // namespace sag::gateway
