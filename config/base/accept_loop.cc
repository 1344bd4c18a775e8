#include "config/base/accept_loop.h"

#include <boost/asio/steady_timer.hpp>

#include "config/base/asio_prelude.h"

namespace sag::base {
namespace asio = boost::asio;

asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor,
                                  std::function<void(asio::ip::tcp::socket)> on_accept,
                                  std::function<void(const boost::system::error_code&)> on_error) {
  asio::steady_timer backoff(acceptor.get_executor());
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      on_error(ec);
      backoff.expires_after(kAcceptBackoff);
      co_await backoff.async_wait(kTuple);
      continue;
    }
    on_accept(std::move(socket));
  }
}

}  // namespace sag::base
