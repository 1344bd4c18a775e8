// The old process's side of a binary upgrade (SIGUSR2; docs/behaviour.md#
// binary-upgrade; the new process's side and the channel's protocol are in
// upgrade_handover.h).
//
// start() runs the executable found at the path this process was started
// from (so a package upgrade that replaced the file runs the new one), with
// the same arguments, the listening sockets inherited and their numbers in
// SAG_LISTEN_FDS, and a socket pair's end in SAG_UPGRADE_FD. The caller
// learns through on_ready once the new process serves, or through on_failed
// when it exits (or closes the channel) before that; then it may start
// again. The new process asks for the store's entries before it accepts
// (on_entries: the caller sends them with send_image()), then says it
// serves (on_ready).
//
// Thread: the main thread (its io_context runs the watch).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "affinity/store/memory_affinity_store.h"

namespace sag::gateway {

class BinaryUpgrade {
 public:
  // `argv`: this process's arguments, argv[0] included.
  BinaryUpgrade(boost::asio::io_context& io, std::vector<std::string> argv);
  ~BinaryUpgrade();

  // The path to run: /proc/self/exe's target as it was at start-up.
  static std::string executable_path();

  struct Sockets {
    std::vector<std::pair<std::string, int>> listening;  // (listen_key, fd)
  };
  // Starts the new process. `key`: the memory store's fingerprint key (null
  // without a memory store). False with `error` when it can't be started,
  // or an upgrade is already under way.
  bool start(const Sockets& sockets, const affinity::MemoryAffinityStore::HashKey* key,
             std::function<void()> on_entries, std::function<void(pid_t)> on_ready,
             std::function<void(std::string)> on_failed, std::string& error);
  bool under_way() const { return channel_ != nullptr; }
  // From on_entries on: hands an entry image (StateFile::encode) to the
  // new process. Blocking (the new process reads at once); false when it
  // is gone.
  bool send_image(const std::string& image);
  // After on_ready: closes the channel (the new process stops reading).
  void finish();

 private:
  void watch();
  void failed(const std::string& why);

  boost::asio::io_context& io_;
  std::vector<std::string> argv_;
  std::string exe_;
  pid_t child_ = -1;
  std::unique_ptr<boost::asio::posix::stream_descriptor> channel_;
  std::function<void()> on_entries_;
  std::function<void(pid_t)> on_ready_;
  std::function<void(std::string)> on_failed_;
  char byte_ = 0;
  bool asked_ = false;  // the new process asked for the entries
};

}  // namespace sag::gateway
