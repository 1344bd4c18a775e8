#include "session/deadline.h"

#include <boost/asio/this_coro.hpp>

#include "config/base/asio_prelude.h"

namespace sag::session {
namespace asio = boost::asio;

Deadline::Deadline(const asio::any_io_executor& ex) : timer_(ex) {}

void Deadline::arm(Clock::time_point at, asio::ip::tcp::socket* victim) {
  fired_ = false;
  victim_ = victim;
  const bool earlier = at < timer_.expiry();
  at_ = at;
  if (earlier) timer_.expires_at(at);  // wakes watch() to wait for the earlier time
}

void Deadline::disarm() {
  fired_ = false;
  victim_ = nullptr;
  at_ = Clock::time_point::max();
}

void Deadline::cancel_now() {
  if (victim_) {
    boost::system::error_code ignored;
    victim_->cancel(ignored);
  }
}

asio::awaitable<void> Deadline::watch() {
  timer_.expires_at(at_);
  for (;;) {
    co_await timer_.async_wait(base::kTuple);
    if ((co_await asio::this_coro::cancellation_state).cancelled() !=
        asio::cancellation_type::none)
      co_return;
    const auto now = Clock::now();
    if (now >= at_) {
      fired_ = true;
      at_ = Clock::time_point::max();
      if (victim_) {
        boost::system::error_code ignored;
        victim_->cancel(ignored);
      }
    }
    // Sleep until the current deadline (possibly moved later meanwhile).
    timer_.expires_at(at_);
  }
}

}  // namespace sag::session
