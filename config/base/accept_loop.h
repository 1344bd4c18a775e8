// The accept loop every listener runs (the workers' listeners and the admin
// listener alike).
#pragma once

#include <chrono>
#include <functional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

namespace sag::base {

// How long a failed accept pauses the loop.
inline constexpr std::chrono::milliseconds kAcceptBackoff{100};

// Accepts on `acceptor` (open and listening) until it is closed or the wait
// is cancelled, and hands each connection to on_accept, on the acceptor's
// executor. A failed accept (out of descriptors or memory: EMFILE, ENFILE,
// ENOBUFS, ...) is passed to on_error, then the loop pauses kAcceptBackoff:
// the error would otherwise repeat at once and spin a core, while the
// listen queue keeps the waiting clients until descriptors free up.
boost::asio::awaitable<void> accept_loop(
    boost::asio::ip::tcp::acceptor& acceptor,
    std::function<void(boost::asio::ip::tcp::socket)> on_accept,
    std::function<void(const boost::system::error_code&)> on_error);

}  // namespace sag::base
