#include "gateway/worker.h"

#include "config/base/block_cache.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "config/base/accept_loop.h"
#include "config/base/worker_shard.h"
#include "gateway/log.h"
#include "session/asio_endpoint.h"
#include "session/client_session.h"

namespace sag::gateway {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// The rare path of accept_loop: counted per listener, and a warning at most
// once a minute per listener (the refusals held back are in the next one).
void refused(const session::ListenerRuntime& listener, session::WorkerContext& ctx,
             uint64_t max_connections, session::LogThrottle& log) {
  ctx.stats.connection_refused(listener.index);
  uint64_t held_back = 0;
  if (!log.allow(session::LogThrottle::Clock::now(), &held_back)) return;
  std::string m = "listener '" + listener.config->name +
                  "': connection refused: limits.max_connections (" +
                  std::to_string(max_connections) + ") reached";
  if (held_back) m += "; " + std::to_string(held_back) + " more refused since the last message";
  log_warning(m);
}

// A connection just accepted on `listener`: refused over
// limits.max_connections, else served.
void accepted(tcp::socket socket, const session::ListenerRuntime& listener,
              session::WorkerContext& ctx, uint64_t max_connections,
              session::LogThrottle& refusal_log) {
  if (static_cast<uint64_t>(ctx.process_connections.fetch_add(1, std::memory_order_relaxed)) >=
      max_connections) {
    ctx.process_connections.fetch_sub(1, std::memory_order_relaxed);
    boost::system::error_code ignored;
    socket.close(ignored);
    refused(listener, ctx, max_connections, refusal_log);
    return;
  }
  asio::co_spawn(ctx.io, session::run_client_connection(std::move(socket), listener, ctx),
                 [](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     log_error(std::string("connection ended by exception: ") + ex.what());
                   }
                 });
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, const session::ListenerRuntime& listener,
                                  session::WorkerContext& ctx, uint64_t max_connections,
                                  session::LogThrottle& refusal_log) {
  return base::accept_loop(
      acceptor,
      [&listener, &ctx, max_connections, &refusal_log](tcp::socket socket) {
        accepted(std::move(socket), listener, ctx, max_connections, refusal_log);
      },
      [&listener](const boost::system::error_code& ec) {
        log_warning("accept on " + listener.config->name + ": " + ec.message());
      });
}

// The worker's io_context is touched by its own thread only, but for
// asio::post (begin_stop, force_close) and io_context::stop from the main
// thread: both go through the scheduler, which keeps its lock. The reactor
// (sockets, timers) runs without locks: with hint 1 it takes two or three
// uncontended mutexes per socket operation and per timer (about 10 per
// HTTP/2 request). Acceptors are bound before the thread starts, and the
// reactor is torn down after it joined.
constexpr int kWorkerConcurrencyHint =
    static_cast<int>(BOOST_ASIO_CONCURRENCY_HINT_ID | BOOST_ASIO_CONCURRENCY_HINT_LOCKING_SCHEDULER);

}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const config::GatewayConfig> config,
               affinity::BackendSet& backends, affinity::AffinityStore& store,
               session::AccessLog& log, session::GatewayStats& stats, const affinity::Clock& clock,
               std::atomic<int64_t>& process_connections)
    : index_(index),
      io_(std::make_unique<asio::io_context>(kWorkerConcurrencyHint)),
      ctx_(std::make_unique<session::WorkerContext>(*io_, std::move(config), log, stats, clock,
                                                    process_connections)),
      sweeper_(std::make_unique<asio::steady_timer>(*io_)),
      max_connections_(ctx_->config->limits.max_connections) {
  ctx_->warn = [](std::string_view line) { log_warning(line); };
  for (const auto& b : backends.backends()) {
    session::BackendRuntime rt;
    rt.backend = b.get();
    // Seeded per worker: random choices differ between workers but are
    // reproducible for a given worker.
    rt.balancer = b->make_balancer(0x9e3779b97f4a7c15ULL * (index + 1));
    for (unsigned i = 0; i < index % std::max<size_t>(1, b->servers().size()); ++i)
      rt.balancer->select({});
    rt.resolver = std::make_unique<affinity::AffinityResolver>(*b, *rt.balancer, &store);
    rt.pool = std::make_unique<session::UpstreamPool>(b->servers().size(), b->config().pool);
    for (affinity::Server* s : b->servers())
      rt.endpoints.push_back(session::to_asio_endpoint(s->endpoint()));
    const auto& bc = b->config();
    if (bc.balance == config::BalanceAlgorithm::kSource) {
      rt.hash_source = session::HashSource::kSource;
    } else if (bc.balance == config::BalanceAlgorithm::kHash) {
      rt.hash_source = bc.hash.source;  // parsed at load
      rt.hash_name = bc.hash.name;
    }
    ctx_->backends.push_back(std::move(rt));
  }
}

Worker::~Worker() {
  stop_and_join();
  for (auto& b : ctx_->backends) b.pool->close_all();
  acceptors_.clear();
  sweeper_.reset();
  ctx_->deadlines.close();
  io_.reset();
  ctx_.reset();
}

void Worker::add_acceptor(tcp::acceptor acceptor, const session::ListenerRuntime& listener,
                          session::LogThrottle& refusal_log) {
  listening_fds_.emplace_back(&listener, acceptor.native_handle());
  acceptors_.push_back({std::move(acceptor), &listener, &refusal_log});
}

void Worker::start() {
  for (auto& a : acceptors_)
    asio::co_spawn(*io_,
                   accept_loop(a.acceptor, *a.listener, *ctx_, max_connections_, *a.refusal_log),
                   asio::detached);
  sweep_pools();
  thread_ = std::thread([this] {
    base::t_worker_slot = index_ + 1;  // this worker's counter slot
    io_->run();
  });
}

void Worker::sweep_pools() {
  sweeper_->expires_after(std::chrono::seconds(1));
  sweeper_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& b : ctx_->backends) b.pool->sweep(now);
    // Blocks a burst left in this worker's cache and a quiet second did not
    // use go back to the heap (and, through MemoryTrim, to the kernel).
    base::BlockCache::trim();
    sweep_pools();
  });
}

void Worker::begin_stop() {
  asio::post(*io_, [this] {
    boost::system::error_code ignored;
    for (auto& a : acceptors_) a.acceptor.close(ignored);
    ctx_->begin_stop();
    for (auto& b : ctx_->backends) b.pool->close_all();
  });
}

void Worker::force_close() {
  asio::post(*io_, [this] { ctx_->close_all(); });
}

void Worker::stop_and_join() {
  if (!thread_.joinable()) return;
  io_->stop();
  thread_.join();
}

}  // namespace sag::gateway
