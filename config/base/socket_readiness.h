// Socket readiness as Asio's epoll reactor already tracks it, so that a
// proxy's steady-state request costs the system calls that move bytes and
// no more (what HAProxy's poller does with its per-fd "ready" bits).
//
// Why: Asio registers each socket once, edge-triggered, and keeps one flag
// per direction, "try the system call first". An event sets it; Asio clears
// it only at EOF. So every async read starts with a recv that usually says
// EAGAIN (the answer of a server we wrote to a microsecond ago is not there
// yet), and every async_wait re-arms epoll with an epoll_ctl (Asio can't
// know whether an edge was consumed while nobody waited). Under load that
// was three system calls per proxied request on top of HAProxy's four.
//
// The rule used here: when a recv made by this thread, in the handler now
// running, returns EAGAIN (or fewer bytes than asked, with no FIN reported:
// note_read_short), the socket was empty at that moment; any byte (or FIN,
// or error) arriving later raises a new edge that the next epoll_wait
// reports and that sets the flag again. Until
// then a read can't make progress, so a read or wait started meanwhile is
// queued without a system call and woken by that edge. A socket whose flag
// is still clear has, as far as the kernel has told us, nothing to read:
// an idle pooled server connection needs no recv(MSG_PEEK) to prove it.
//
// Contract
// - Thread: the socket's io_context runs on one thread (one per worker in
//   sag), which also runs its reactor; these calls run on that thread.
// - Marks must follow the recv/send in the same handler, before anything
//   could run the reactor (no co_await in between).
// - Boost 1.81's epoll reactor (Debian 12): the flag is a private member,
//   reached by the explicit-instantiation rule that lets a template argument
//   name it; a different Boost fails to compile here, by design (check
//   epoll_reactor.ipp's start_op and descriptor_state::perform_io first).
#pragma once

#include <cstddef>
#include <tuple>
#include <utility>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/reactive_wait_op.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <boost/version.hpp>

#if BOOST_VERSION != 108100 || !defined(BOOST_ASIO_HAS_EPOLL) || defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#error "socket_readiness relies on Boost 1.81's epoll reactor internals: re-check them"
#endif

namespace sag::base {

namespace readiness_detail {
using Socket = boost::asio::ip::tcp::socket;
using Reactor = boost::asio::detail::epoll_reactor;
using Impl = boost::asio::detail::reactive_socket_service<boost::asio::ip::tcp>::implementation_type;

// The socket's reactor-side state; nullptr when the socket is closed.
Impl& impl_of(Socket& s) noexcept;
bool* flags_of(Impl& impl) noexcept;  // Asio's try_speculative_[max_ops], or nullptr

// Cancels one queued wait when its coroutine is cancelled (as Asio's own
// per-operation cancellation for sockets does).
class WaitCancellation {
 public:
  WaitCancellation(Reactor* r, Reactor::per_descriptor_data* d, int fd, int op)
      : reactor_(r), data_(d), fd_(fd), op_(op) {}
  void operator()(boost::asio::cancellation_type_t type) {
    using boost::asio::cancellation_type;
    if (!!(type & (cancellation_type::terminal | cancellation_type::partial | cancellation_type::total)))
      reactor_->cancel_ops_by_key(fd_, *data_, op_, this);
  }

 private:
  Reactor* reactor_;
  Reactor::per_descriptor_data* data_;
  int fd_;
  int op_;
};

Reactor& reactor_of(Socket& s);
// Switches Asio's internal non-blocking mode on (as its own operations do);
// false with `ec` set when that fails.
bool prepare(Impl& impl, boost::system::error_code& ec) noexcept;
}  // namespace readiness_detail

// False: the last direct recv drained the socket and no readiness event has
// arrived since, so a recv now would say EAGAIN. True: there may be bytes,
// an EOF or an error (or the socket is closed).
bool maybe_readable(boost::asio::ip::tcp::socket& s) noexcept;

// Marks the socket empty for reads (see the rule above). Call right after a
// recv on it returned EAGAIN.
void note_read_drained(boost::asio::ip::tcp::socket& s) noexcept;
// The same after a recv that returned fewer bytes than asked: the socket
// was emptied of bytes, but the peer's FIN may wait behind them (recv hands
// it out at the next call) without a new edge, when it came before the
// epoll report that woke us. So the socket has epoll report EPOLLRDHUP
// (one epoll_ctl, the first time; nothing is marked then), and is marked
// only when its latest report showed no FIN, hang-up or error.
void note_read_short(boost::asio::ip::tcp::socket& s) noexcept;
// Marks the socket full for writes. Call right after a send said EAGAIN.
void note_write_blocked(boost::asio::ip::tcp::socket& s) noexcept;

// A recv that never waits, marking the socket drained when it comes back
// short: bytes read; 0 with asio::error::would_block when there are none,
// asio::error::eof at the peer's FIN, or errno in the system category.
std::size_t receive_now(boost::asio::ip::tcp::socket& s, boost::asio::mutable_buffer b,
                        boost::system::error_code& ec) noexcept;

// receive_now when the socket may be readable: true with its result (bytes,
// EOF or an error) in `ec` and `n`; false, with no system call when the
// socket is known empty, when a wait for readiness must come first. For a
// coroutine's own read loop, which then needs no receive_some frame.
bool receive_ready(boost::asio::ip::tcp::socket& s, boost::asio::mutable_buffer b,
                   boost::system::error_code& ec, std::size_t& n) noexcept;

// A read_some for coroutines that makes no system call while the socket is
// known empty: waits for readiness first (no epoll_ctl), then receive_now.
// Results as receive_now's, never would_block; cancelled as async_wait_ready.
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> receive_some(
    boost::asio::ip::tcp::socket& s, boost::asio::mutable_buffer b);

// void(error_code): completes when a read (wait_read) or write (wait_write)
// may make progress: at once (posted) when the socket may already be
// ready, else on the next readiness event, without the epoll_ctl that
// socket.async_wait makes each time. Cancelled as async_wait is (close,
// cancel, the cancellation slot).
template <class Token>
auto async_wait_ready(boost::asio::ip::tcp::socket& s, boost::asio::ip::tcp::socket::wait_type w,
                      Token&& token) {
  namespace asio = boost::asio;
  return asio::async_initiate<Token, void(boost::system::error_code)>(
      [&s, w](auto handler) {
        namespace d = asio::detail;
        using Handler = decltype(handler);
        using Op = d::reactive_wait_op<Handler, asio::ip::tcp::socket::executor_type>;
        readiness_detail::Impl& impl = readiness_detail::impl_of(s);
        readiness_detail::Reactor& reactor = readiness_detail::reactor_of(s);
        const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
        auto slot = asio::get_associated_cancellation_slot(handler);
        typename Op::ptr p = {d::addressof(handler), Op::ptr::allocate(handler), 0};
        p.p = new (p.v) Op(boost::system::error_code(), handler, s.get_executor());
        const int op_type = w == asio::ip::tcp::socket::wait_write ? readiness_detail::Reactor::write_op
                                                                   : readiness_detail::Reactor::read_op;
        if (!readiness_detail::prepare(impl, p.p->ec_)) {
          reactor.post_immediate_completion(p.p, is_continuation);
        } else {
          if (slot.is_connected()) {
            p.p->cancellation_key_ = &slot.template emplace<readiness_detail::WaitCancellation>(
                &reactor, &impl.reactor_data_, impl.socket_, op_type);
          }
          // Speculative: Asio performs the wait (completing it, posted) only
          // while its flag says the socket may be ready; otherwise it queues
          // the wait with no epoll_ctl.
          reactor.start_op(op_type, impl.socket_, impl.reactor_data_, p.p, is_continuation, true);
        }
        p.v = p.p = 0;
      },
      token);
}

}  // namespace sag::base
