#include "gateway/service_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

namespace sag::gateway {

void ServiceNotify::ready(const std::string& status, bool took_over) {
  std::string msg;
  if (took_over) msg += "MAINPID=" + std::to_string(::getpid()) + "\n";
  msg += "READY=1\nSTATUS=" + status;
  sd_notify(0, msg.c_str());
}

void ServiceNotify::reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
  sd_notify(0, ("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading the configuration").c_str());
}

void ServiceNotify::stopping(const std::string& status) {
  sd_notify(0, ("STOPPING=1\nSTATUS=" + status).c_str());
}

}  // namespace sag::gateway
