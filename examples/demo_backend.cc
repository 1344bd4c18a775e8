// gateway-demo-backend: a small stateful HTTP/1.1 server for the demo.
//
//   gateway-demo-backend --name s1 --port 9001 [--bind 127.0.0.1]
//
// It keeps a request counter per session, keyed by its own cookie DEMOSESSION
// (set with a random id when absent), and answers GET / with
// "server s1, session abc123, request #N" and `X-Server: s1`, so a client
// behind the gateway can see that it sticks to one server. GET /healthz is
// 200 "ok". SIGTERM/SIGINT stop it. One coroutine per connection.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

struct Sessions {
  std::mutex mu;
  std::unordered_map<std::string, unsigned long> counters;
  std::mt19937_64 rng{std::random_device{}()};

  std::string new_id() {
    std::lock_guard lock(mu);
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    return buf;
  }
  unsigned long next(const std::string& id) {
    std::lock_guard lock(mu);
    return ++counters[id];
  }
};

// The value of cookie `name` in a Cookie header, or "".
std::string cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    auto semi = header.find(';');
    auto part = header.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return {};
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  return true;
}

asio::awaitable<void> serve(tcp::socket sock, const std::string& name, Sessions& sessions) {
  beast::flat_buffer buf;
  beast::error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  for (;;) {
    http::request<http::string_body> req;
    auto [rec, n] = co_await http::async_read(sock, buf, req, asio::as_tuple(asio::use_awaitable));
    if (rec) co_return;  // closed, or a request we cannot parse

    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "gateway-demo-backend");
    res.set("X-Server", name);
    res.set(http::field::content_type, "text/plain");
    res.set(http::field::cache_control, "no-store");
    auto target = req.target();
    auto path = target.substr(0, target.find('?'));
    if (path == "/healthz") {
      res.body() = "ok\n";
    } else if (path == "/" && (req.method() == http::verb::get || req.method() == http::verb::head)) {
      std::string id = cookie_value(req[http::field::cookie], "DEMOSESSION");
      if (!valid_id(id)) {
        id = sessions.new_id();
        res.set(http::field::set_cookie, "DEMOSESSION=" + id + "; Path=/; HttpOnly");
      }
      res.body() = "server " + name + ", session " + id + ", request #" +
                   std::to_string(sessions.next(id)) + "\n";
    } else {
      res.result(http::status::not_found);
      res.body() = "not found\n";
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays

    auto [wec, w] = co_await http::async_write(sock, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !res.keep_alive()) break;
  }
  sock.shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, const std::string& name, Sessions& sessions) {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), serve(std::move(sock), name, sessions), asio::detached);
  }
}

[[noreturn]] void usage(const char* argv0) {
  std::cerr << "usage: " << argv0 << " --name NAME --port PORT [--bind ADDRESS]\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string name, bind = "127.0.0.1";
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    if (a == "--name") name = argv[++i];
    else if (a == "--port") port = std::atoi(argv[++i]);
    else if (a == "--bind") bind = argv[++i];
    else usage(argv[0]);
  }
  if (name.empty() || port <= 0 || port > 65535) usage(argv[0]);

  try {
    asio::io_context ioc;
    Sessions sessions;
    tcp::endpoint ep{asio::ip::make_address(bind), static_cast<unsigned short>(port)};
    tcp::acceptor acceptor{ioc, ep};  // sets SO_REUSEADDR
    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
    asio::co_spawn(ioc, listen(acceptor, name, sessions), asio::detached);
    std::cerr << "gateway-demo-backend " << name << " listening on " << ep << "\n";

    std::vector<std::thread> threads;
    threads.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : threads) t.join();
  } catch (const std::exception& e) {
    std::cerr << "gateway-demo-backend: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
