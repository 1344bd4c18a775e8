#include "gateway/service_notify.h"

#include <systemd/sd-daemon.h>
#include <unistd.h>

namespace sag::gateway {

void ServiceNotify::ready(const std::string& status, bool took_over) {
  std::string msg;
  if (took_over) msg += "MAINPID=" + std::to_string(::getpid()) + "\n";
  msg += "READY=1\nSTATUS=" + status;
  sd_notify(0, msg.c_str());
}

void ServiceNotify::stopping(const std::string& status) {
  sd_notify(0, ("STOPPING=1\nSTATUS=" + status).c_str());
}

}  // namespace sag::gateway
