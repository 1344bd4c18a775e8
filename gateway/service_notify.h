// systemd's notify protocol (docs/behaviour.md#signals): READY=1 once the
// process serves, MAINPID= from a process that took over by a binary
// upgrade, RELOADING=1 then READY=1 around a reload, STOPPING=1 when a stop
// begins, and a one-line STATUS= with each.
// Nothing is sent when NOTIFY_SOCKET is unset (not under systemd), and a
// notification that can't be sent is not an error of the gateway's.
//
// Thread: any (each call is one datagram).
#pragma once

#include <string>

namespace sag::gateway {

class ServiceNotify {
 public:
  // The process serves. `took_over`: it did so by a binary upgrade, so it
  // is the service's main process from now on.
  static void ready(const std::string& status, bool took_over);
  // A reload (SIGHUP) began; ready() follows when it ended, whatever the
  // result. MONOTONIC_USEC goes with it (systemd's notify-reload wants it).
  static void reloading();
  // A stop began (not sent by a process that hands over to a new one:
  // the service goes on).
  static void stopping(const std::string& status);
};

}  // namespace sag::gateway
