#include "config/redis/redis_client.h"

#include <pthread.h>

#include <csignal>
#include <exception>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include "config/redis/redis_connection.h"

namespace sag::redis {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{1000};
// Sentinel watch connection: how soon a lost one is opened again.
constexpr std::chrono::milliseconds kRewatch{1000};

const RedisReply kNil;

std::string describe(boost::system::error_code ec, const RedisReply& r) {
  if (ec) return ec == asio::error::timed_out ? "timed out" : ec.message();
  return r.str;
}

}  // namespace

RedisClient::RedisClient(const config::RedisConfig& cfg, LogSink log) : cfg_(cfg), log_(std::move(log)) {
  if (cfg_.sentinel_addresses.empty()) {
    direct_ = config::Endpoint::parse(cfg_.address);
  } else {
    for (const auto& a : cfg_.sentinel_addresses)
      if (auto ep = config::Endpoint::parse(a)) sentinels_.push_back(*ep);
  }
}

RedisClient::~RedisClient() { stop(); }

std::chrono::milliseconds RedisClient::handshake_timeout() const {
  // Connect + AUTH + SELECT + ROLE in one budget: never below 1 s, so a
  // loaded machine does not turn a slow start into an outage.
  return std::max<std::chrono::milliseconds>(cfg_.timeout, 1000ms);
}

void RedisClient::start() {
  std::call_once(started_, [this] {
    if (stopped_.load()) return;
    work_.emplace(io_.get_executor());
    asio::post(io_, [this] { attempt(); });
    thread_ = std::thread([this] {
      // hiredis writes with write(2): a peer gone away must be EPIPE here,
      // not a SIGPIPE that ends the process (the gateway also ignores it;
      // tests and other users may not).
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      for (;;) {
        try {
          io_.run();
          break;
        } catch (const std::exception& e) {
          log(true, std::string("redis: client thread: ") + e.what());
        } catch (...) {
          log(true, "redis: client thread: unknown exception");
        }
      }
    });
  });
}

void RedisClient::stop() {
  if (stopped_.exchange(true)) return;
  if (thread_.joinable()) {
    asio::post(io_, [this] { shutdown(); });
    thread_.join();
  }
  {
    std::lock_guard lock(up_mu_);
    up_.store(false, std::memory_order_release);
  }
  up_cv_.notify_all();
}

void RedisClient::shutdown() {
  state_ = State::kStopped;
  ++gen_;
  retry_timer_.cancel();
  watch_timer_.cancel();
  for (auto* c : {&cmd_, &sub_, &sentinel_query_, &sentinel_watch_}) {
    if (*c) (*c)->close(asio::error::operation_aborted);
    c->reset();
  }
  for (auto& fn : stop_fns_) fn();
  work_.reset();
  // Failure completions posted by the closes above, and the completions of
  // timers the stop functions cancelled, run first (FIFO); then the loop
  // ends even if a user's timer is still armed.
  asio::post(io_, [this] { io_.stop(); });
}

bool RedisClient::wait_connected(std::chrono::milliseconds limit) {
  std::unique_lock lock(up_mu_);
  return up_cv_.wait_for(lock, limit, [this] { return up_.load(std::memory_order_acquire); });
}

void RedisClient::command(std::vector<std::string> argv, Callback done) {
  if (io_.get_executor().running_in_this_thread()) {
    do_command(argv, done);
    return;
  }
  asio::post(io_, [this, argv = std::move(argv), done = std::move(done)]() mutable { do_command(argv, done); });
}

void RedisClient::do_command(std::vector<std::string>& argv, Callback& done) {
  if (state_ != State::kUp || !cmd_) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    asio::post(io_, [done = std::move(done)] { done(asio::error::not_connected, kNil); });
    return;
  }
  cmd_->command(argv, [this, gen = gen_, done = std::move(done)](boost::system::error_code ec,
                                                                 const RedisReply& reply) {
    if (ec) {
      errors_.fetch_add(1, std::memory_order_relaxed);
    } else if (reply.is_error() && reply.str.rfind("READONLY", 0) == 0) {
      // The master we hold was turned into a replica (failover): find the
      // new one. Posted: we are inside the connection's reply callback.
      errors_.fetch_add(1, std::memory_order_relaxed);
      asio::post(io_, [this, gen] { fail(gen, "the server became a replica (READONLY)", true); });
    }
    done(ec, reply);
  });
}

void RedisClient::subscribe(std::string channel, std::function<void(std::string_view)> on_message) {
  asio::post(io_, [this, channel = std::move(channel), fn = std::move(on_message)]() mutable {
    auto& fns = channels_[channel];
    fns.push_back(std::move(fn));
    if (fns.size() > 1 || state_ == State::kStopped) return;  // subscribed already (or will be)
    if (sub_) {
      sub_->subscribe({channel}, {});
    } else if (state_ == State::kUp) {
      open_subscriber();
    }
    // kConnecting before the subscriber exists / kBackoff: the next
    // open_subscriber() takes every channel.
  });
}

void RedisClient::on_state(std::function<void(bool up)> fn) {
  asio::post(io_, [this, fn = std::move(fn)] {
    state_fns_.push_back(fn);
    if (state_ == State::kUp) fn(true);
  });
}

void RedisClient::on_stop(std::function<void()> fn) {
  asio::post(io_, [this, fn = std::move(fn)]() mutable { stop_fns_.push_back(std::move(fn)); });
}

void RedisClient::attempt() {
  if (state_ == State::kStopped) return;
  state_ = State::kConnecting;
  ++gen_;
  if (!sentinels_.empty()) {
    ask_sentinel(0, "");
  } else if (direct_) {
    connect_master(*direct_);
  } else {
    fail(gen_, "bad address '" + cfg_.address + "'");
  }
}

void RedisClient::ask_sentinel(size_t tried, std::string why) {
  if (tried >= sentinels_.size()) {
    fail(gen_, "no sentinel named master '" + cfg_.sentinel_master + "'" + (why.empty() ? "" : " (" + why + ")"));
    return;
  }
  const size_t i = (sentinel_next_ + tried) % sentinels_.size();
  const config::Endpoint& ep = sentinels_[i];
  auto c = RedisConnection::create(io_, handshake_timeout());
  std::string error;
  if (!c->open(ep.ip.to_string(), ep.port, {}, error)) {
    ask_sentinel(tried + 1, ep.to_string() + ": " + error);
    return;
  }
  if (sentinel_query_) sentinel_query_->close(asio::error::operation_aborted);
  sentinel_query_ = c;
  c->command({"SENTINEL", "get-master-addr-by-name", cfg_.sentinel_master},
             [this, gen = gen_, tried, i](boost::system::error_code ec, const RedisReply& reply) {
               if (gen != gen_) return;
               if (sentinel_query_) sentinel_query_->close(asio::error::operation_aborted);
               sentinel_query_.reset();
               const config::Endpoint& sentinel = sentinels_[i];
               std::optional<config::IpAddress> ip;
               long port = 0;
               if (!ec && reply.type == RedisReply::Type::kArray && reply.elements.size() == 2) {
                 ip = config::IpAddress::parse(reply.elements[0].str);
                 char* end = nullptr;
                 port = std::strtol(reply.elements[1].str.c_str(), &end, 10);
                 if (!end || *end != '\0' || port <= 0 || port > 65535) ip.reset();
               }
               if (!ip) {
                 ask_sentinel(tried + 1, sentinel.to_string() + ": " +
                                              (ec || reply.is_error() ? describe(ec, reply) : "master unknown"));
                 return;
               }
               sentinel_next_ = i;  // ask this one first next time
               config::Endpoint master;
               master.ip = *ip;
               master.port = static_cast<uint16_t>(port);
               master_ = master;
               watch_sentinel(i);
               connect_master(master);
             });
}

void RedisClient::watch_sentinel(size_t i) {
  if (sentinel_watch_ || state_ == State::kStopped || sentinels_.empty()) return;
  const config::Endpoint& ep = sentinels_[i % sentinels_.size()];
  auto c = RedisConnection::create(io_, handshake_timeout());
  auto rewatch = [this] {
    sentinel_watch_.reset();
    if (state_ == State::kStopped) return;
    watch_timer_.expires_after(kRewatch);
    watch_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) watch_sentinel(sentinel_next_);
    });
  };
  std::string error;
  if (!c->open(ep.ip.to_string(), ep.port,
               [rewatch](boost::system::error_code, const std::string&) { rewatch(); }, error)) {
    rewatch();
    return;
  }
  sentinel_watch_ = c;
  // "+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>"
  c->subscribe({"+switch-master"}, [this](std::string_view, std::string_view payload) {
    std::vector<std::string> f;
    size_t pos = 0;
    while (pos <= payload.size() && f.size() < 6) {
      const size_t sp = payload.find(' ', pos);
      f.emplace_back(payload.substr(pos, sp == std::string_view::npos ? std::string_view::npos : sp - pos));
      if (sp == std::string_view::npos) break;
      pos = sp + 1;
    }
    if (f.size() != 5 || f[0] != cfg_.sentinel_master) return;
    auto ep = config::Endpoint::parse(f[3].find(':') != std::string::npos ? "[" + f[3] + "]:" + f[4]
                                                                          : f[3] + ":" + f[4]);
    if (!ep || (master_ && *ep == *master_)) return;
    master_ = *ep;
    if (state_ == State::kBackoff) {
      schedule_attempt(0ms);
    } else if (state_ == State::kUp || state_ == State::kConnecting) {
      fail(gen_, "sentinel switched the master to " + ep->to_string(), true);
    }
  });
}

void RedisClient::connect_master(const config::Endpoint& ep) {
  current_ = ep;
  master_text_ = ep.to_string();
  auto c = RedisConnection::create(io_, cfg_.timeout);
  std::string error;
  const uint64_t gen = gen_;
  if (!c->open(ep.ip.to_string(), ep.port,
               [this, gen](boost::system::error_code, const std::string& reason) { fail(gen, reason); },
               error)) {
    fail(gen, error);
    return;
  }
  cmd_ = c;
  auto step = [this, gen](std::string what) {
    return [this, gen, what](boost::system::error_code ec, const RedisReply& reply) {
      if (gen != gen_) return;
      if (ec || reply.is_error()) fail(gen, what + ": " + describe(ec, reply));
    };
  };
  const auto hs = handshake_timeout();
  if (!cfg_.password.empty()) c->command({"AUTH", cfg_.password}, step("AUTH"), hs);
  if (cfg_.db != 0) c->command({"SELECT", std::to_string(cfg_.db)}, step("SELECT"), hs);
  const bool sentinel = !sentinels_.empty();
  c->command({sentinel ? "ROLE" : "PING"},
             [this, gen, sentinel](boost::system::error_code ec, const RedisReply& reply) {
               if (gen != gen_) return;
               if (ec || reply.is_error()) {
                 fail(gen, std::string(sentinel ? "ROLE" : "PING") + ": " + describe(ec, reply));
                 return;
               }
               if (sentinel && (reply.type != RedisReply::Type::kArray || reply.elements.empty() ||
                                reply.elements[0].str != "master")) {
                 // A sentinel's stale answer during a failover: ask again soon.
                 fail(gen, master_text_ + " is not a master (yet)");
                 return;
               }
               if (channels_.empty()) {
                 set_up();
               } else {
                 open_subscriber();
               }
             },
             hs);
}

void RedisClient::open_subscriber() {
  auto c = RedisConnection::create(io_, handshake_timeout());
  const uint64_t gen = gen_;
  std::string error;
  if (!c->open(current_.ip.to_string(), current_.port,
               [this, gen](boost::system::error_code, const std::string& reason) {
                 fail(gen, "subscriber: " + reason);
               },
               error)) {
    fail(gen, "subscriber: " + error);
    return;
  }
  sub_ = c;
  if (!cfg_.password.empty())
    c->command({"AUTH", cfg_.password}, [this, gen](boost::system::error_code ec, const RedisReply& reply) {
      if (gen == gen_ && (ec || reply.is_error())) fail(gen, "subscriber AUTH: " + describe(ec, reply));
    });
  c->on_confirmed([this, gen] {
    if (gen == gen_ && state_ == State::kConnecting) set_up();
  });
  std::vector<std::string> names;
  for (const auto& [name, fns] : channels_) names.push_back(name);
  c->subscribe(names, [this](std::string_view channel, std::string_view payload) {
    auto it = channels_.find(std::string(channel));
    if (it == channels_.end()) return;
    // By index: a handler may subscribe (posted, so no insertion here).
    for (size_t k = 0; k < it->second.size(); ++k) it->second[k](payload);
  });
}

void RedisClient::set_up() {
  state_ = State::kUp;
  backoff_ = kFirstBackoff;
  const bool after_outage = down_reported_;
  down_reported_ = false;
  {
    std::lock_guard lock(up_mu_);
    up_.store(true, std::memory_order_release);
  }
  up_cv_.notify_all();
  log(false, "redis: connected to " + master_text_ + (cfg_.db ? " db " + std::to_string(cfg_.db) : "") +
                 (sentinels_.empty() ? "" : " (master '" + cfg_.sentinel_master + "')") +
                 (after_outage ? " after an outage" : ""));
  for (size_t k = 0; k < state_fns_.size(); ++k) state_fns_[k](true);
}

void RedisClient::fail(uint64_t gen, const std::string& reason, bool now) {
  if (gen != gen_ || state_ == State::kStopped) return;
  ++gen_;
  for (auto* c : {&cmd_, &sub_, &sentinel_query_}) {
    if (*c) (*c)->close(asio::error::connection_reset);
    c->reset();
  }
  const bool was_up = state_ == State::kUp;
  state_ = State::kBackoff;
  const std::string where = master_text_.empty() ? std::string("redis") : master_text_;
  if (was_up) {
    {
      std::lock_guard lock(up_mu_);
      up_.store(false, std::memory_order_release);
    }
    down_reported_ = true;
    down_reason_ = where + ": " + reason;
    log(true, "redis: lost " + down_reason_ + "; serving from the local copy, reconnecting");
    for (size_t k = 0; k < state_fns_.size(); ++k) state_fns_[k](false);
  } else if (!down_reported_) {
    down_reported_ = true;
    down_reason_ = where + ": " + reason;
    log(true, "redis: cannot connect to " + down_reason_ + "; retrying in the background");
  } else if (down_reason_ != where + ": " + reason) {
    // One line per outage, plus one each time its cause changes (Redis
    // went from refusing to timing out, a sentinel named another master).
    down_reason_ = where + ": " + reason;
    log(true, "redis: still cannot connect, now to " + down_reason_);
  }
  if (state_ != State::kBackoff) return;  // a state callback stopped or restarted us
  if (now) {
    schedule_attempt(0ms);
  } else {
    schedule_attempt(backoff_);
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  }
}

void RedisClient::schedule_attempt(std::chrono::milliseconds delay) {
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this, gen = gen_](boost::system::error_code ec) {
    if (ec || gen != gen_ || state_ != State::kBackoff) return;
    attempt();
  });
}

}  // namespace sag::redis
