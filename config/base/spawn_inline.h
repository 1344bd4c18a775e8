// Starting a coroutine per HTTP/2 stream without co_spawn's wrapper.
//
// Why: co_spawn wraps the coroutine in an entry coroutine that takes two
// tracked-work executors, awaits a dispatch before the first line runs, and
// dispatches the completion through the handler's executor at the end:
// about 1,000 instructions per stream of S3 (bench/instructions.sh), for
// guarantees a stream does not need. Its caller (Http2Session) is already on
// the executor's thread, keeps the io_context busy while any stream runs
// (its own coroutine waits for the last one), and takes a completion that
// runs inline.
//
// How: the one piece co_spawn itself uses, Asio's awaitable_thread, started
// on a minimal entry coroutine. This is Asio's detail API, checked against
// Boost 1.81 (Debian 12's): the static_assert below stops a build on another
// Boost until someone reads boost/asio/impl/co_spawn.hpp again.
#pragma once

#include <exception>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/version.hpp>

namespace sag::base {

static_assert(BOOST_VERSION / 100 == 1081,
              "spawn_inline uses Asio's awaitable_thread as Boost 1.81 has it: "
              "check it against this Boost's impl/co_spawn.hpp and impl/awaitable.hpp");

namespace spawn_inline_detail {

template <class T, class Done>
boost::asio::awaitable<boost::asio::detail::awaitable_thread_entry_point>
entry(boost::asio::awaitable<T> body, Done done) {
  std::exception_ptr failure;
  try {
    co_await std::move(body);
  } catch (...) {
    failure = std::current_exception();
  }
  done(std::move(failure));
}

}  // namespace spawn_inline_detail

// Runs `body` at once, on the calling thread, up to its first wait, then
// on `ex` as its waits complete. When it ends (its result, if any, is
// dropped) or throws, `done(std::exception_ptr)` is called once, on the
// coroutine's thread, after the body's frame is gone, possibly before
// spawn_inline returns (a body that never waits).
// Contract: call from the thread running `ex`'s io_context. `done` must not
// throw (checked). Nothing here holds work on the io_context: while the
// body waits on something that is not an I/O object's operation, the
// caller keeps the context running.
// Throws only std::bad_alloc from allocating the entry frame, and then
// neither runs `body` nor calls `done`. Allocation failure when the body's
// first wait starts (its operation, or a timer's place in the queue) ends
// the process: the body ran, its frames then belong to a destruction Asio
// posts, and nothing could end the body's work safely before they are
// gone. (co_spawn ended it too: the exception left io_context::run().)
template <class T, class Done>
void spawn_inline(const boost::asio::any_io_executor& ex, boost::asio::awaitable<T> body,
                  Done done) {
  static_assert(std::is_nothrow_invocable_v<Done&, std::exception_ptr>,
                "spawn_inline: done(std::exception_ptr) must be noexcept");
  using Thread = boost::asio::detail::awaitable_thread<boost::asio::any_io_executor>;
  Thread thread(spawn_inline_detail::entry<T>(std::move(body), std::move(done)), ex,
                boost::asio::cancellation_slot(),
                boost::asio::cancellation_state(boost::asio::cancellation_slot()));
  try {
    thread.launch();
  } catch (...) {
    std::terminate();
  }
}

}  // namespace sag::base
