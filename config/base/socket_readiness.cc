#include "config/base/socket_readiness.h"

#include "config/base/asio_prelude.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstdint>

#include <type_traits>

#include <boost/asio/error.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>

namespace sag::base {
namespace asio = boost::asio;
using boost::system::error_code;
using readiness_detail::Impl;
using readiness_detail::Reactor;

namespace readiness_detail {
namespace {

// A template argument may name a private member ([temp.spec.general]/6):
// Grant<Tag, &X::m> stores that pointer behind a friend function of Tag.
template <class Tag, typename Tag::type kMember>
struct Grant {
  friend typename Tag::type member(Tag) { return kMember; }
};

using DescriptorState = std::remove_pointer_t<Reactor::per_descriptor_data>;
using BasicSocket = asio::basic_socket<asio::ip::tcp, asio::any_io_executor>;

struct SocketImplTag {
  using type = asio::detail::io_object_impl<asio::detail::reactive_socket_service<asio::ip::tcp>,
                                            asio::any_io_executor> BasicSocket::*;
  friend type member(SocketImplTag);
};
template struct Grant<SocketImplTag, &BasicSocket::impl_>;

struct TrySpeculativeTag {
  using type = bool (DescriptorState::*)[Reactor::max_ops];
  friend type member(TrySpeculativeTag);
};
template struct Grant<TrySpeculativeTag, &DescriptorState::try_speculative_>;

struct RegisteredEventsTag {
  using type = std::uint32_t DescriptorState::*;
  friend type member(RegisteredEventsTag);
};
template struct Grant<RegisteredEventsTag, &DescriptorState::registered_events_>;

struct EpollFdTag {
  using type = int Reactor::*;
  friend type member(EpollFdTag);
};
template struct Grant<EpollFdTag, &Reactor::epoll_fd_>;

struct OwnerTag {
  using type = Reactor* DescriptorState::*;
  friend type member(OwnerTag);
};
template struct Grant<OwnerTag, &DescriptorState::reactor_>;

// The events of the socket's latest epoll report (descriptor_state keeps
// them in its operation base).
struct TaskResultTag {
  using type = unsigned int asio::detail::scheduler_operation::*;
  friend type member(TaskResultTag);
};
template struct Grant<TaskResultTag, &asio::detail::scheduler_operation::task_result_>;

}  // namespace

Impl& impl_of(Socket& s) noexcept {
  return (static_cast<BasicSocket&>(s).*member(SocketImplTag{})).get_implementation();
}

bool* flags_of(Impl& impl) noexcept {
  if (impl.reactor_data_ == nullptr) return nullptr;
  return impl.reactor_data_->*member(TrySpeculativeTag{});
}

Reactor& reactor_of(Socket& s) {
  // The socket's own record names its reactor; use_service would lock the
  // context's service registry on every wait.
  if (DescriptorState* d = impl_of(s).reactor_data_) return *(d->*member(OwnerTag{}));
  return asio::use_service<Reactor>(asio::query(s.get_executor(), asio::execution::context));
}

bool prepare(Impl& impl, error_code& ec) noexcept {
  if ((impl.state_ & asio::detail::socket_ops::non_blocking) != 0) return true;
  return asio::detail::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, ec);
}

}  // namespace readiness_detail

namespace {
bool* flags_of(asio::ip::tcp::socket& s) noexcept {
  return readiness_detail::flags_of(readiness_detail::impl_of(s));
}
}  // namespace

bool maybe_readable(asio::ip::tcp::socket& s) noexcept {
  const bool* flags = flags_of(s);
  return flags == nullptr || flags[Reactor::read_op];
}

void note_read_drained(asio::ip::tcp::socket& s) noexcept {
  if (bool* flags = flags_of(s)) flags[Reactor::read_op] = false;
}

void note_read_short(asio::ip::tcp::socket& s) noexcept {
  using readiness_detail::DescriptorState;
  Impl& impl = readiness_detail::impl_of(s);
  DescriptorState* d = impl.reactor_data_;
  if (d == nullptr) return;
  std::uint32_t& registered = d->*member(readiness_detail::RegisteredEventsTag{});
  if ((registered & EPOLLRDHUP) == 0) {
    // First time: have epoll report the peer's FIN as such from now on.
    // The re-arm also reports anything already pending, so nothing is
    // marked this time.
    epoll_event ev{};
    ev.events = registered | EPOLLRDHUP;
    ev.data.ptr = d;
    Reactor& reactor = readiness_detail::reactor_of(s);
    if (::epoll_ctl(reactor.*member(readiness_detail::EpollFdTag{}), EPOLL_CTL_MOD, impl.socket_, &ev) == 0)
      registered = ev.events;
    return;
  }
  // A C-style cast reaches the private base (descriptor_state : operation).
  auto* op = (asio::detail::scheduler_operation*)d;  // NOLINT(google-readability-casting)
  const unsigned int last = op->*member(readiness_detail::TaskResultTag{});
  // A FIN (or error) that came before the report which woke us sits behind
  // the bytes just read and raises no new edge: leave the flag set.
  if ((last & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) return;
  (d->*member(readiness_detail::TrySpeculativeTag{}))[Reactor::read_op] = false;
}

void note_write_blocked(asio::ip::tcp::socket& s) noexcept {
  if (bool* flags = flags_of(s)) flags[Reactor::write_op] = false;
}

std::size_t receive_now(asio::ip::tcp::socket& s, asio::mutable_buffer b, error_code& ec) noexcept {
  ec = {};
  const int fd = s.native_handle();
  for (;;) {
    const ssize_t n = ::recv(fd, b.data(), b.size(), MSG_DONTWAIT);
    if (n > 0) {
      if (static_cast<std::size_t>(n) < b.size()) note_read_short(s);
      return static_cast<std::size_t>(n);
    }
    if (n == 0) {
      // EOF stays readable: the flag is left set.
      if (b.size() != 0) ec = asio::error::eof;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      note_read_drained(s);
      ec = asio::error::would_block;
    } else {
      ec = error_code(errno, asio::error::get_system_category());
    }
    return 0;
  }
}

bool receive_ready(asio::ip::tcp::socket& s, asio::mutable_buffer b, error_code& ec,
                   std::size_t& n) noexcept {
  n = 0;
  if (!maybe_readable(s)) return false;
  n = receive_now(s, b, ec);
  return ec != asio::error::would_block;
}

asio::awaitable<std::tuple<error_code, std::size_t>> receive_some(asio::ip::tcp::socket& s,
                                                                  asio::mutable_buffer b) {
  error_code ec;
  std::size_t n = 0;
  while (!receive_ready(s, b, ec, n)) {
    auto [wec] = co_await async_wait_ready(s, asio::ip::tcp::socket::wait_read, kTuple);
    if (wec) co_return std::tuple{wec, std::size_t{0}};
  }
  co_return std::tuple{ec, n};
}

}  // namespace sag::base
