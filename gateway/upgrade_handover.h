// The new process's side of a binary upgrade (SIGUSR2; docs/behaviour.md#
// binary-upgrade, the old side is binary_upgrade.h): what the old process
// hands over through the environment of the new one.
//
// - SAG_LISTEN_FDS="KEY=FD,FD;KEY=FD": the old process's listening sockets
//   by listen_key() of their bound address (the admin listener's too).
//   take() gives them to the listener of the same address, so
//   connections queued on them are accepted here, never reset; sockets no
//   listener took are closed at the end of start-up (close_unclaimed()).
// - SAG_UPGRADE_FD=FD: a stream socket to the old process. On it the old
//   process first writes the affinity store's 16-byte fingerprint key
//   (read_store_key(), before the store is used). Once this process has
//   its sockets, it writes "S" and the old one answers with its store's
//   entries as a state-file image (StateFile::encode) preceded by its
//   length (8 bytes, little-endian): read_image(). Then this process
//   starts accepting and writes "R" (ready()); the old one stops, and once
//   it has drained, sends one more image (the entries made meanwhile) and
//   closes. receive() reads that on a thread of its own. So a session the
//   old process knew is known here before the first connection is
//   accepted.
//
// Thread: the main thread, except receive()'s callback (its own thread).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "affinity/store/memory_affinity_store.h"

namespace sag::gateway {

// "ADDR:PORT" ("[ADDR]:PORT" for IPv6) of a bound address.
std::string listen_key(const boost::asio::ip::tcp::endpoint& ep);

class UpgradeHandover {
 public:
  UpgradeHandover() = default;
  UpgradeHandover(const UpgradeHandover&) = delete;
  UpgradeHandover& operator=(const UpgradeHandover&) = delete;
  ~UpgradeHandover();

  // Takes what the environment hands over; both variables are removed from
  // it, so that a later upgrade's process does not see them.
  void read_environment();

  // True when started by an upgrading process.
  bool upgrading() const { return channel_ >= 0; }
  // The inherited listening sockets for `key` (each given once).
  std::vector<int> take(const std::string& key);
  // Closes the inherited sockets nobody took (listeners gone from the
  // config).
  void close_unclaimed();

  // Reads the old process's store key (bounded: 5 s). False when it didn't
  // come.
  bool read_store_key(affinity::MemoryAffinityStore::HashKey& key);
  // Asks for the old process's entries and reads the image it sends
  // (bounded: 10 s). False when none came.
  bool read_image(std::string& image);
  // Tells the old process this one serves.
  void ready();
  // Reads the entry images on a thread until the old process closes the
  // channel, calling `on_image` with each.
  void receive(std::function<void(const std::string&)> on_image);

 private:
  std::map<std::string, std::vector<int>> fds_;
  int channel_ = -1;
  std::thread reader_;
};

}  // namespace sag::gateway
