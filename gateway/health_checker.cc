#include "gateway/health_checker.h"
#include "session/asio_endpoint.h"
#include "session/tcp/proxy_header.h"
#include "gateway/redis_check.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>

#include "config/base/asio_prelude.h"
#include "gateway/log.h"

namespace sag::gateway {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct HealthChecker::Entry {
  std::shared_ptr<const affinity::BackendSet> keep;  // what `server` and `backend` belong to
  affinity::Server* server = nullptr;
  const config::BackendConfig* backend = nullptr;
  std::string label;  // "backend/server" for the log
  tcp::endpoint endpoint;
  std::string request;  // http checks: the whole request, built once
  std::optional<RedisCheck> redis;  // redis checks
  bool checked = false;
  bool counts_first = false;  // counted in first_pending_ (checked at start)

  // Checker thread only.
  bool retired = false;  // a reload replaced it: its loop ends at its next step
  bool ended = false;    // its loop has ended (it may be freed)
  bool first_done = false;
  bool up = false;
  uint32_t successes = 0;  // consecutive, while down
  uint32_t failures = 0;   // consecutive, while up

  // Shared with last_check() readers.
  mutable std::mutex mu;
  std::string last = "-";
};

namespace {

std::string ms_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

std::string describe(const boost::system::error_code& ec) {
  if (ec == asio::error::connection_refused) return "connection refused";
  if (ec == asio::error::connection_reset) return "connection reset";
  if (ec == asio::error::eof) return "closed without response";
  if (ec == asio::error::host_unreachable) return "host unreachable";
  if (ec == asio::error::network_unreachable) return "network unreachable";
  std::string m = ec.message();
  if (!m.empty()) m[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(m[0])));
  return m;
}

// "HTTP/1.x NNN" at the start of a status line; 0 when malformed.
unsigned parse_status(std::string_view line) {
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[8] != ' ') return 0;
  unsigned code = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return 0;
    code = code * 10 + static_cast<unsigned>(line[i] - '0');
  }
  if (line.size() > 12 && line[12] != ' ' && line[12] != '\r') return 0;
  return code >= 100 ? code : 0;
}

}  // namespace

std::vector<std::unique_ptr<HealthChecker::Entry>> HealthChecker::make_entries(
    const affinity::BackendSet& backends, const std::shared_ptr<const affinity::BackendSet>& keep) {
  std::vector<std::unique_ptr<Entry>> out;
  for (const auto& b : backends.backends()) {
    const auto& bc = b->config();
    const bool checked = bc.health_check.type != config::HealthCheckType::kNone;
    for (affinity::Server* s : b->servers()) {
      auto e = std::make_unique<Entry>();
      e->keep = keep;
      e->server = s;
      e->backend = &bc;
      e->label = bc.name + "/" + s->name();
      e->endpoint = session::to_asio_endpoint(s->endpoint());
      e->checked = checked;
      if (bc.health_check.type == config::HealthCheckType::kRedis)
        e->redis.emplace(bc.health_check.password, bc.health_check.role);
      if (bc.health_check.type == config::HealthCheckType::kHttp) {
        const std::string& host =
            bc.health_check.host.empty() ? s->endpoint().to_string() : bc.health_check.host;
        e->request = "GET " + bc.health_check.path + " HTTP/1.1\r\nHost: " + host +
                     "\r\nUser-Agent: sag-health-check\r\nConnection: close\r\n\r\n";
      }
      out.push_back(std::move(e));
    }
  }
  return out;
}

HealthChecker::HealthChecker(const affinity::BackendSet& backends, uint64_t seed) : rng_(seed) {
  const auto now = Clock::now();
  entries_ = make_entries(backends, nullptr);
  for (auto& e : entries_) {
    any_checked_ |= e->checked;
    any_passive_ |= e->backend->passive.has_value();
    if (e->checked) {
      // Down until the first result says otherwise.
      e->server->set_healthy(false, now);
      e->counts_first = true;
      ++first_pending_;
    }
    by_state_.emplace(e->server->state().get(), e.get());
  }
}

void HealthChecker::update(std::shared_ptr<const affinity::BackendSet> backends) {
  auto next = make_entries(*backends, backends);
  {
    std::lock_guard lock(run_mu_);
    if (stopped_) return;
    if (!io_) {
      // Nothing was checked until now: the thread starts with this set.
      io_ = std::make_unique<asio::io_context>(1);
      work_ = std::make_shared<asio::executor_work_guard<asio::io_context::executor_type>>(
          io_->get_executor());
      thread_ = std::thread([this] { io_->run(); });
    }
  }
  asio::post(*io_, [this, n = std::make_shared<decltype(next)>(std::move(next))]() mutable {
    swap_in(std::move(*n));
  });
}

void HealthChecker::swap_in(std::vector<std::unique_ptr<Entry>> next) {
  const auto now = Clock::now();
  std::erase_if(retired_, [](const auto& e) { return e->ended; });
  std::unordered_map<const void*, Entry*> before;
  for (auto& e : entries_) before.emplace(e->server->state().get(), e.get());
  bool passive = false;
  for (auto& e : next) {
    passive |= e->backend->passive.has_value();
    auto it = before.find(e->server->state().get());
    Entry* old = it == before.end() ? nullptr : it->second;
    if (old && old->checked && e->checked) {
      // The same server, still checked: health and rise/fall progress stay.
      e->first_done = old->first_done;
      e->up = old->up;
      e->successes = old->successes;
      e->failures = old->failures;
      std::lock_guard lock(old->mu);
      e->last = old->last;
    } else if (e->checked) {
      // New, or newly checked: down until its first result, as at start
      // (a server newly checked keeps serving until then).
      if (!old) e->server->set_healthy(false, now);
    } else if (old && old->checked) {
      e->server->set_healthy(true, now);  // checks turned off: up
    }
  }
  for (auto& e : entries_) {
    e->retired = true;
    retired_.push_back(std::move(e));
  }
  entries_ = std::move(next);
  {
    std::lock_guard lock(map_mu_);
    by_state_.clear();
    for (auto& e : entries_) by_state_.emplace(e->server->state().get(), e.get());
  }
  for (auto& e : entries_)
    if (e->checked) spawn(*e);
  if (passive && !any_passive_) {
    any_passive_ = true;
    if (!eject_timer_) eject_timer_ = std::make_unique<asio::steady_timer>(*io_);
    poll_ejections();
  }
}

void HealthChecker::spawn(Entry& e) {
  asio::co_spawn(*io_, check_loop(e), [label = e.label](std::exception_ptr ex) {
    if (!ex) return;
    try {
      std::rethrow_exception(ex);
    } catch (const std::exception& what) {
      log_error("health check of " + label + " ended by exception: " + what.what());
    }
  });
}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::start() {
  std::lock_guard lock(run_mu_);
  if (started_ || stopped_) return;
  started_ = true;
  if (!any_checked_ && !any_passive_) return;
  io_ = std::make_unique<asio::io_context>(1);
  // Runs until stop(), even with no check left: a reload may add some.
  work_ = std::make_shared<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_->get_executor());
  for (auto& e : entries_)
    if (e->checked) spawn(*e);
  if (any_passive_) {
    eject_timer_ = std::make_unique<asio::steady_timer>(*io_);
    poll_ejections();
  }
  thread_ = std::thread([this] { io_->run(); });
}

void HealthChecker::stop() {
  std::lock_guard lock(run_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (io_) {
    io_->stop();
    if (thread_.joinable()) thread_.join();
    // Sockets and timers of suspended checks go with the context's frames.
    eject_timer_.reset();
    work_.reset();
    io_.reset();
  }
  {
    std::lock_guard first(first_mu_);
    first_aborted_ = true;
  }
  first_cv_.notify_all();
}

bool HealthChecker::wait_first_round(std::chrono::milliseconds max_wait) {
  std::unique_lock lock(first_mu_);
  first_cv_.wait_for(lock, max_wait, [&] { return first_pending_ == 0 || first_aborted_; });
  return first_pending_ == 0;
}

std::string HealthChecker::last_check(const affinity::Server& server) const {
  std::lock_guard map(map_mu_);
  auto it = by_state_.find(server.state().get());
  if (it == by_state_.end() || !it->second->checked) return "-";
  std::lock_guard lock(it->second->mu);
  return it->second->last;
}

bool HealthChecker::checked(const affinity::Server& server) const {
  std::lock_guard map(map_mu_);
  auto it = by_state_.find(server.state().get());
  return it != by_state_.end() && it->second->checked;
}

std::chrono::milliseconds HealthChecker::jittered(std::chrono::milliseconds interval) {
  std::uniform_real_distribution<double> d(0.9, 1.1);
  const auto ms = static_cast<int64_t>(static_cast<double>(interval.count()) * d(rng_));
  return std::chrono::milliseconds(std::max<int64_t>(1, ms));
}

asio::awaitable<void> HealthChecker::check_loop(Entry& e) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  while (!e.retired) {
    const auto started = Clock::now();
    Result r = co_await check_once(e, started);
    if (e.retired) break;
    apply(e, r, started, Clock::now());
    // The next check starts `interval` after this one ended: never overlap.
    pause.expires_after(jittered(e.backend->health_check.interval));
    auto [ec] = co_await pause.async_wait(base::kTuple);
    if (ec) break;
  }
  e.ended = true;
}

asio::awaitable<HealthChecker::Result> HealthChecker::check_once(Entry& e, Clock::time_point started) {
  using namespace asio::experimental::awaitable_operators;
  auto ex = co_await asio::this_coro::executor;
  tcp::socket socket(ex);
  asio::steady_timer deadline(ex);
  const auto timeout = e.backend->health_check.timeout;
  deadline.expires_at(started + timeout);
  // Whichever ends first cancels the other (per-operation cancellation), and
  // both have ended when this returns, so `socket` outlives the probe.
  auto outcome = co_await (probe(e, socket, started) ||
                           deadline.async_wait(base::kTuple));
  boost::system::error_code ignored;
  socket.close(ignored);
  if (outcome.index() == 0) co_return std::get<0>(std::move(outcome));
  co_return Result{false, "timeout after " + ms_text(timeout)};
}

asio::awaitable<HealthChecker::Result> HealthChecker::probe(Entry& e, tcp::socket& socket,
                                                            Clock::time_point started) {
  // Never throws: every failure is a Result (awaitable_operators' || waits
  // for the first branch that ends without an exception).
  auto [cec] = co_await socket.async_connect(e.endpoint, base::kTuple);
  if (cec) co_return Result{false, describe(cec)};
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  // A server behind `proxy_protocol: v2` expects a header first: LOCAL,
  // as for any connection of the proxy's own.
  if (e.backend->proxy_protocol == config::ProxyProtocol::kV2) {
    const std::string_view local = session::ProxyHeader::local();
    auto [lec, ln] = co_await asio::async_write(socket, asio::buffer(local), base::kTuple);
    if (lec) co_return Result{false, describe(lec)};
  }
  if (e.redis) {
    // (Not `co_return co_await`: g++ 12 miscompiles it, docs/dependencies.md.)
    Result r = co_await redis_probe(e, socket, started);
    co_return r;
  }
  if (e.request.empty()) co_return Result{true, "connected in " + ms_text(Clock::now() - started)};

  auto [wec, written] =
      co_await asio::async_write(socket, asio::buffer(e.request), base::kTuple);
  if (wec) co_return Result{false, describe(wec)};

  // Only the status line matters: read until its end, ignore the rest.
  char buf[512];
  size_t have = 0;
  for (;;) {
    auto [rec, n] = co_await socket.async_read_some(asio::buffer(buf + have, sizeof buf - have),
                                                    base::kTuple);
    if (rec) co_return Result{false, describe(rec)};
    const size_t before = have;
    have += n;
    const std::string_view got(buf, have);
    const size_t eol = got.find('\n', before);
    if (eol == std::string_view::npos) {
      if (have == sizeof buf) co_return Result{false, "malformed status line"};
      continue;
    }
    const unsigned status = parse_status(got.substr(0, eol));
    if (status == 0) co_return Result{false, "malformed status line"};
    const auto& hc = e.backend->health_check;
    const std::string took = " in " + ms_text(Clock::now() - started);
    if (status >= hc.expect_status_min && status <= hc.expect_status_max)
      co_return Result{true, std::to_string(status) + took};
    co_return Result{false, "status " + std::to_string(status) + took};
  }
}

asio::awaitable<HealthChecker::Result> HealthChecker::redis_probe(Entry& e, tcp::socket& socket,
                                                                  Clock::time_point started) {
  const std::string request = e.redis->request();
  auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(request), base::kTuple);
  if (wec) co_return Result{false, describe(wec)};
  std::string got, why;
  bool info = false;
  char buf[4096];
  for (;;) {
    auto [rec, n] = co_await socket.async_read_some(asio::buffer(buf), base::kTuple);
    if (rec) co_return Result{false, describe(rec)};
    got.append(buf, n);
    if (got.size() > 256 * 1024) co_return Result{false, "reply too long"};
    const auto v = info ? e.redis->judge_info(got, why) : e.redis->judge(got, why);
    if (v == RedisCheck::Verdict::kNeedMore) continue;
    if (v == RedisCheck::Verdict::kAskInfo) {
      info = true;
      got.clear();
      auto [iec, in] = co_await asio::async_write(socket, asio::buffer(RedisCheck::info_request()),
                                                  base::kTuple);
      if (iec) co_return Result{false, describe(iec)};
      continue;
    }
    co_return Result{v == RedisCheck::Verdict::kUp, why + " in " + ms_text(Clock::now() - started)};
  }
}

void HealthChecker::apply(Entry& e, const Result& r, Clock::time_point started, Clock::time_point now) {
  {
    std::lock_guard lock(e.mu);
    e.last = r.text;
  }
  const auto& hc = e.backend->health_check;
  affinity::Server& s = *e.server;
  if (!e.first_done) {
    // The first result decides the initial state directly.
    e.first_done = true;
    e.up = r.ok;
    e.successes = e.failures = 0;
    s.set_healthy(r.ok, now);
    // Up from the start: no slow-start ramp (as for servers never checked).
    if (r.ok) s.set_up_since(Clock::time_point{});
    log_info("server " + e.label + (r.ok ? " is up: " : " is down: ") + r.text);
    if (e.counts_first) {
      {
        std::lock_guard lock(first_mu_);
        --first_pending_;
      }
      first_cv_.notify_all();
    }
  } else if (r.ok) {
    e.failures = 0;
    if (!e.up && ++e.successes >= hc.rise) {
      e.up = true;
      e.successes = 0;
      s.set_healthy(true, now);  // starts the slow-start ramp
      log_info("server " + e.label + " is up: " + r.text);
    }
  } else {
    e.successes = 0;
    if (e.up && ++e.failures >= hc.fall) {
      e.up = false;
      e.failures = 0;
      s.set_healthy(false, now);
      log_info("server " + e.label + " is down: " + r.text);
    }
  }

  // Passive ejection on a checked backend ends with the first successful
  // check that started once `eject_for` had passed.
  if (r.ok && s.ejected()) {
    const auto eject_for = e.backend->passive ? e.backend->passive->eject_for : config::Duration{0};
    if (started >= s.ejected_at() + eject_for) {
      s.end_ejection();
      s.set_up_since(now);  // ramp back in under slow start
      log_info("server " + e.label + " is back after ejection: " + r.text);
    }
  }
}

void HealthChecker::poll_ejections() {
  const auto now = Clock::now();
  for (auto& e : entries_) {
    if (e->checked || !e->backend->passive) continue;
    affinity::Server& s = *e->server;
    if (!s.ejected() || now < s.ejected_at() + e->backend->passive->eject_for) continue;
    s.end_ejection();
    s.set_up_since(now);  // ramp back in under slow start
    log_info("server " + e->label + " is back on probation after ejection for " +
             ms_text(e->backend->passive->eject_for));
  }
  eject_timer_->expires_after(std::chrono::milliseconds(100));
  eject_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) poll_ejections();
  });
}

}  // namespace sag::gateway
