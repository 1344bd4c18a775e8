// The pid file (`--pid-file PATH`, `pid_file:`; docs/behaviour.md#signals):
// written once the listeners accept, so whoever waits for it (a supervisor,
// an upgrade) knows the process serves; removed at exit only while it still
// holds this process's pid (a process that took over since has written its
// own, which must stay).
//
// Thread: the main thread.
#pragma once

#include <string>

namespace sag::gateway {

class PidFile {
 public:
  PidFile() = default;
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;
  ~PidFile() { remove(); }

  // Writes this process's pid and a newline to `path`, through a temporary
  // file renamed over it (a reader never sees it half written). False with
  // `error` set when it can't.
  bool write(const std::string& path, std::string& error);
  // Removes the file if it still holds this process's pid; once.
  void remove();

 private:
  std::string path_;
  std::string written_;  // the contents written
};

}  // namespace sag::gateway
