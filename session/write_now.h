// A write that never waits, for the request path's small writes: most heads
// (and whole small responses) fit the socket's send buffer at once, and an
// asynchronous write that completes at once still costs a trip through the
// executor and a coroutine resume. The caller writes the rest, if any,
// asynchronously.
//
// Contract: the socket is switched to non-blocking mode on first use (its
// asynchronous operations are unaffected); returns the bytes written; `ec`
// is asio::error::would_block when none were, other errors as write_some's.
// On a TLS stream it writes at most one record, and after would_block the
// rest must be written with the same bytes (TlsSocketStream::write_some_now:
// OpenSSL's retry rule), which "write the rest asynchronously" does.
#pragma once

#include <cstddef>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config/base/socket_readiness.h"
#include "tls/tls_socket_stream.h"

namespace sag::session {

template <class ConstBufferSequence>
size_t write_now(boost::asio::ip::tcp::socket& s, const ConstBufferSequence& buffers,
                 boost::system::error_code& ec) {
  if (!s.non_blocking()) {
    s.non_blocking(true, ec);
    if (ec) return 0;
  }
  const size_t n = s.write_some(buffers, ec);
  // The send said EAGAIN: the async write of the rest waits for EPOLLOUT
  // instead of trying the send again first.
  if (ec == boost::asio::error::would_block) base::note_write_blocked(s);
  return n;
}

template <class ConstBufferSequence>
size_t write_now(tls::TlsSocketStream& s, const ConstBufferSequence& buffers,
                 boost::system::error_code& ec) {
  return s.write_some_now(buffers, ec);
}

// As much of data[0, size) as the stream takes now, in as many writes as
// that needs. Returns the bytes written; `ec` is clear when it stopped for
// want of room (the caller writes the rest asynchronously, the same bytes),
// else the write's error.
template <class Stream>
size_t write_all_now(Stream& s, const void* data, size_t size, boost::system::error_code& ec) {
  size_t done = 0;
  while (done < size) {
    const size_t n =
        write_now(s, boost::asio::buffer(static_cast<const char*>(data) + done, size - done), ec);
    if (ec || n == 0) break;
    done += n;
  }
  if (ec == boost::asio::error::would_block) ec = {};
  return done;
}

}  // namespace sag::session
