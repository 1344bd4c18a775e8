// Listening sockets for the workers' acceptors.
#pragma once

#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace sag::gateway {

// A socket bound to `ep` with SO_REUSEPORT (so every worker has its own
// accept queue on the same address), listening; its descriptor, which the
// caller owns, or -1 with `error` set. Touches no worker's io_context, so
// it may be called while the workers run (a reload).
int open_listen_socket(const boost::asio::ip::tcp::endpoint& ep, std::string& error);

// The port a listening descriptor is bound to (0 on error).
uint16_t bound_port(int fd);

}  // namespace sag::gateway
