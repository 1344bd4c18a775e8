// The Asio prelude: how coroutines in sag wait for an operation.
//
// Expected network errors are values, not exceptions (a peer reset is
// ordinary on the request path): every co_await takes the as_tuple token and
// unpacks `auto [ec, n] = co_await op(..., kTuple)`. Anything that still
// throws is caught where the coroutine was started (co_spawn's completion,
// or base::spawn_inline's `done`).
//
// The *Default aliases make that token the default of an I/O object, as
// Beast's advanced_server_flex_awaitable example does with
// `as_tuple_t<use_awaitable_t<>>::as_default_on_t<...>`, for code that would
// rather not pass it at every call.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sag::base {

// The completion token: resume the coroutine with (error_code, results...).
using TupleToken = boost::asio::as_tuple_t<boost::asio::use_awaitable_t<>>;
inline constexpr auto kTuple = boost::asio::as_tuple(boost::asio::use_awaitable);

// An I/O object whose operations take kTuple when given no token.
template <class IoObject>
using WithTupleDefault = TupleToken::as_default_on_t<IoObject>;
using TcpAcceptorDefault = WithTupleDefault<boost::asio::ip::tcp::acceptor>;
using TcpSocketDefault = WithTupleDefault<boost::asio::ip::tcp::socket>;
using SteadyTimerDefault = WithTupleDefault<boost::asio::steady_timer>;

}  // namespace sag::base
