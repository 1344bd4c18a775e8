// A write that never waits, for the request path's small writes: most heads
// (and whole small responses) fit the socket's send buffer at once, and an
// asynchronous write that completes at once still costs a trip through the
// executor and a coroutine resume. The caller writes the rest, if any,
// asynchronously.
//
// Contract: the socket is switched to non-blocking mode on first use (its
// asynchronous operations are unaffected); returns the bytes written; `ec`
// is asio::error::would_block when none were, other errors as write_some's.
// TLS streams have no such write here (OpenSSL's retry rules): the overload
// takes nothing and says would_block.
#pragma once

#include <cstddef>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "tls/tls_socket_stream.h"

namespace sag::session {

template <class ConstBufferSequence>
size_t write_now(boost::asio::ip::tcp::socket& s, const ConstBufferSequence& buffers,
                 boost::system::error_code& ec) {
  if (!s.non_blocking()) {
    s.non_blocking(true, ec);
    if (ec) return 0;
  }
  return s.write_some(buffers, ec);
}

template <class ConstBufferSequence>
size_t write_now(tls::TlsSocketStream&, const ConstBufferSequence&, boost::system::error_code& ec) {
  ec = boost::asio::error::would_block;
  return 0;
}

}  // namespace sag::session
