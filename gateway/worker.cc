#include "gateway/worker.h"

#include "config/base/block_cache.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <unistd.h>

#include "config/base/accept_loop.h"
#include "config/base/worker_shard.h"
#include "gateway/log.h"
#include "gateway/worker_mailbox.h"
#include "session/asio_endpoint.h"
#include "session/client_session.h"
#include "session/tcp/tcp_relay.h"

namespace sag::gateway {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// The rare path of accept_loop: counted per listener, and a warning at most
// once a minute per listener (the refusals held back are in the next one).
void refused(const session::ListenerRuntime& listener, session::WorkerContext& ctx,
             uint64_t max_connections, session::LogThrottle& log) {
  ctx.stats.connection_refused(listener.id);
  uint64_t held_back = 0;
  if (!log.allow(session::LogThrottle::Clock::now(), &held_back)) return;
  std::string m = "listener '" + listener.config->name +
                  "': connection refused: limits.max_connections (" +
                  std::to_string(max_connections) + ") reached";
  if (held_back) m += "; " + std::to_string(held_back) + " more refused since the last message";
  log_warning(m);
}

// A connection just accepted on listener `id`: refused over
// limits.max_connections, else served with the current generation.
void accepted(tcp::socket socket, uint32_t id, session::WorkerContext& ctx,
              session::LogThrottle& refusal_log) {
  const session::ListenerRuntime* listener = ctx.current->shared->listener(id);
  if (!listener) return;  // a reload removed it (the acceptor closes next)
  const uint64_t max_connections = ctx.current->config->limits.max_connections;
  if (static_cast<uint64_t>(ctx.process_connections.fetch_add(1, std::memory_order_relaxed)) >=
      max_connections) {
    ctx.process_connections.fetch_sub(1, std::memory_order_relaxed);
    boost::system::error_code ignored;
    socket.close(ignored);
    refused(*listener, ctx, max_connections, refusal_log);
    return;
  }
  const bool tcp = listener->config->mode == config::ProxyMode::kTcp;
  asio::co_spawn(ctx.io,
                 tcp ? session::run_tcp_connection(std::move(socket), *listener, ctx)
                     : session::run_client_connection(std::move(socket), *listener, ctx),
                 [](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     log_error(std::string("connection ended by exception: ") + ex.what());
                   }
                 });
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, uint32_t id, session::WorkerContext& ctx,
                                  session::LogThrottle& refusal_log) {
  return base::accept_loop(
      acceptor,
      [id, &ctx, &refusal_log](tcp::socket socket) {
        accepted(std::move(socket), id, ctx, refusal_log);
      },
      [id, &ctx](const boost::system::error_code& ec) {
        const session::ListenerRuntime* l = ctx.current->shared->listener(id);
        log_warning("accept on " + (l ? l->config->name : std::string("a removed listener")) + ": " +
                    ec.message());
      });
}

// The worker's io_context is touched by its own thread only: other threads
// reach it through its mailbox (WorkerMailbox: an eventfd and a queue of
// its own), so neither the scheduler nor the reactor takes a lock (with
// hint 1 they took two or three uncontended mutexes per socket operation
// and per timer, and the scheduler four per request). Acceptors are bound
// before the thread starts, and the reactor is torn down after it joined.
constexpr int kWorkerConcurrencyHint = BOOST_ASIO_CONCURRENCY_HINT_UNSAFE;

}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const session::Generation> generation,
               affinity::AffinityStore& store, session::GatewayStats& stats,
               const affinity::Clock& clock, std::atomic<int64_t>& process_connections)
    : index_(index),
      io_(std::make_unique<asio::io_context>(kWorkerConcurrencyHint)),
      mail_(std::make_unique<WorkerMailbox>(*io_)),
      ctx_(std::make_unique<session::WorkerContext>(*io_, stats, clock, process_connections)),
      store_(store),
      sweeper_(std::make_unique<asio::steady_timer>(*io_)),
      watcher_(std::make_unique<asio::steady_timer>(*io_)) {
  ctx_->warn = [](std::string_view line) { log_warning(line); };
  // Built here, on the main thread, before the worker's thread exists.
  ctx_->current = session::WorkerGeneration::build(std::move(generation), index_, &store_, nullptr);
}

Worker::~Worker() {
  stop_and_join();
  if (ctx_->current)
    for (auto& b : ctx_->current->backends) b.pool->close_all();
  acceptors_.clear();
  sweeper_.reset();
  watcher_.reset();
  mail_.reset();
  ctx_->deadlines.close();
  // Connections' frames go with the io_context; the view after them.
  io_.reset();
  ctx_.reset();
}

void Worker::add_acceptor(NewAcceptor a) {
  listening_fds_.emplace_back(a.key, a.fd);
  listening_ids_.push_back(a.id);
  acceptors_.push_back(std::make_unique<Acceptor>(
      Acceptor{tcp::acceptor(*io_, a.protocol, a.fd), a.id, a.refusal_log}));
}

void Worker::spawn_accept(size_t i) {
  Acceptor& a = *acceptors_[i];
  asio::co_spawn(*io_, accept_loop(a.acceptor, a.listener, *ctx_, *a.refusal_log), asio::detached);
}

void Worker::start() {
  for (size_t i = 0; i < acceptors_.size(); ++i) spawn_accept(i);
  sweep_pools();
  watch_down_servers();
  mail_->start();
  thread_ = std::thread([this] {
    base::t_worker_slot = index_ + 1;  // this worker's counter slot
    io_->run();
  });
}

void Worker::adopt(std::shared_ptr<const session::Generation> generation,
                   std::vector<NewAcceptor> added, std::function<void()> done) {
  // The fds listed for an upgrade follow at once (main thread).
  for (size_t i = 0; i < listening_ids_.size();) {
    if (!generation->listener(listening_ids_[i])) {
      listening_ids_.erase(listening_ids_.begin() + static_cast<ptrdiff_t>(i));
      listening_fds_.erase(listening_fds_.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (const auto& a : added) {
    listening_fds_.emplace_back(a.key, a.fd);
    listening_ids_.push_back(a.id);
  }
  mail_->send([this, generation = std::move(generation), added = std::move(added),
                done = std::move(done)]() mutable {
    ctx_->current = session::WorkerGeneration::build(std::move(generation), index_, &store_,
                                                     ctx_->current.get());
    boost::system::error_code ignored;
    for (auto& a : acceptors_)
      if (a->acceptor.is_open() && !ctx_->current->shared->listener(a->listener)) a->acceptor.close(ignored);
    if (!ctx_->stopping) {
      for (auto& a : added) {
        acceptors_.push_back(std::make_unique<Acceptor>(
            Acceptor{tcp::acceptor(*io_, a.protocol, a.fd), a.id, a.refusal_log}));
        spawn_accept(acceptors_.size() - 1);
      }
    } else {
      for (auto& a : added) ::close(a.fd);
    }
    done();
  });
}

void Worker::watch_down_servers() {
  // Every 100 ms: `on_down: close` acts within that of a server going down.
  watcher_->expires_after(std::chrono::milliseconds(100));
  watcher_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (ctx_->watching()) ctx_->close_relays_of_down_servers();
    watch_down_servers();
  });
}

void Worker::sweep_pools() {
  sweeper_->expires_after(std::chrono::seconds(1));
  sweeper_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& b : ctx_->current->backends) b.pool->sweep(now);
    // Blocks a burst left in this worker's cache and a quiet second did not
    // use go back to the heap (and, through MemoryTrim, to the kernel).
    base::BlockCache::trim();
    ctx_->buffers.trim();
    sweep_pools();
  });
}

void Worker::begin_stop() {
  mail_->send([this] {
    boost::system::error_code ignored;
    for (auto& a : acceptors_) a->acceptor.close(ignored);
    ctx_->begin_stop();
    for (auto& b : ctx_->current->backends) b.pool->close_all();
  });
}

void Worker::force_close() {
  mail_->send([this] { ctx_->close_all(); });
}

void Worker::stop_and_join() {
  if (!thread_.joinable()) return;
  mail_->send([this] { io_->stop(); });
  thread_.join();
}

}  // namespace sag::gateway
