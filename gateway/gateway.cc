#include "gateway/gateway.h"

#include "session/asio_endpoint.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <random>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "affinity/model/backend.h"
#include "affinity/clock.h"
#include "affinity/store/memory_affinity_store.h"
#include "affinity/store/redis_affinity_store.h"
#include "config/base/worker_shard.h"
#include "config/redis/redis_client.h"
#include "affinity/store/shared_admin_state.h"
#include "gateway/admin/admin_server.h"
#include "gateway/health_checker.h"
#include "gateway/memory_trim.h"
#include "gateway/binary_upgrade.h"
#include "gateway/generation_builder.h"
#include "gateway/listen_socket.h"
#include "gateway/reloader.h"
#include "gateway/pid_file.h"
#include "gateway/service_notify.h"
#include "gateway/store_handover.h"
#include "gateway/upgrade_handover.h"
#include "gateway/log.h"
#include "session/log_throttle.h"
#include "gateway/worker.h"
#include "session/access_log.h"
#include "tls/server_tls_context.h"
#include "tls/ticket_key_share.h"
#include "tls/ticket_keys.h"

namespace sag::gateway {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Ticket keys rotate this often (the previous key still decrypts); with
// Redis, TicketKeyShare rotates them for every replica at once, and the ring's
// own rotation only acts while Redis is away that long.
constexpr std::chrono::hours kTicketRotation{12};

void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

std::vector<std::string> Gateway::check_runtime(const config::GatewayConfig& config) {
  std::vector<std::string> errors;
  for (const auto& l : config.listeners) {
    if (!l.tls) continue;
    std::vector<std::string> tls_errors;
    tls::ServerTlsContext::create(*l.tls, supported_alpn(), tls_errors);
    for (auto& e : tls_errors) errors.push_back("listener '" + l.name + "': " + e);
  }
  return errors;
}

namespace {

// Every checked server is down until its first result: wait for that
// round (bounded) before any listener opens.
void wait_first_health_round(HealthChecker& health, const config::GatewayConfig& config) {
  config::Duration wait{0};
  for (const auto& b : config.backends)
    if (b.health_check.type != config::HealthCheckType::kNone)
      wait = std::max(wait, b.health_check.timeout);
  if (wait.count() > 0 && !health.wait_first_round(wait + std::chrono::milliseconds(500)))
    log_warning("health checks: not every server has a first result yet");
}

// Learn and source keys are stored as keyed hashes
// (docs/behaviour.md#persistence): under redis.key_secret_file, else the
// first cookie secret in config order.
std::string redis_key_secret(const config::GatewayConfig& config) {
  std::string secret = config.affinity_store.redis.key_secret;
  for (const auto& b : config.backends)
    if (secret.empty() && b.persistence.cookie && !b.persistence.cookie->secrets.empty())
      secret = b.persistence.cookie->secrets.front();
  if (secret.empty() &&
      std::any_of(config.backends.begin(), config.backends.end(),
                  [](const auto& b) { return b.persistence.learn || b.persistence.source; }))
    log_warning("affinity_store: no redis.key_secret_file and no cookie secret_file: learned session ids and "
                "client addresses are hashed into Redis keys without a secret (whoever reads Redis can test "
                "guesses, e.g. every IPv4 address)");
  return secret;
}

// The affinity store (one for the process: learn and source entries made
// on one worker are seen by all) and, with `type: redis`, the client and
// what it shares with the other replicas: the store's entries, admin
// state and TLS ticket keys. Whatever way run() ends, the client thread
// stops first (pending callbacks run, timers are cancelled), then the
// members go in reverse order while its io_context still exists.
struct Stores {
  std::unique_ptr<redis::RedisClient> redis;
  std::unique_ptr<affinity::SharedAdminState> shared;
  std::unique_ptr<tls::TicketKeyShare> shared_tickets;
  std::unique_ptr<affinity::AffinityStore> store;
  affinity::RedisAffinityStore* redis_store = nullptr;
  affinity::MemoryAffinityStore* memory_store = nullptr;  // type: memory
  ~Stores() {
    if (redis) redis->stop();
  }
};

void start_ticket_share(Stores& s, const config::GatewayConfig& config,
                        const std::shared_ptr<tls::TicketKeys>& ticket_keys,
                        const redis::RedisClient::LogSink& redis_log) {
  if (std::none_of(config.listeners.begin(), config.listeners.end(),
                   [](const auto& l) { return l.tls && l.tls->session_tickets; }))
    return;
  tls::TicketKeyShare::Options to;
  to.key_prefix = config.affinity_store.redis.key_prefix;
  to.ticket_period = kTicketRotation;
  s.shared_tickets = std::make_unique<tls::TicketKeyShare>(
      *s.redis, to,
      [ticket_keys](const std::string& current, const std::vector<std::string>& decrypt_only) {
        auto key = tls::TicketKey::parse(current);
        if (!key) return;
        std::vector<tls::TicketKey> others;
        for (const auto& k : decrypt_only)
          if (auto o = tls::TicketKey::parse(k)) others.push_back(*o);
        ticket_keys->set(*key, others);
      },
      redis_log);
  s.shared_tickets->start();
}

// Warm-up before any listener opens, so a restarted replica keeps every
// session and the shared admin state; bounded, and never fatal: without
// Redis the gateway serves from its local store and syncs once Redis
// answers.
void warm_up_from_redis(Stores& s) {
  if (!s.redis->wait_connected(std::chrono::seconds(2))) {
    log_warning("redis: not reachable at start-up; serving from the local store until it is");
    return;
  }
  if (!s.redis_store->warm_up(std::chrono::seconds(5)))
    log_warning("redis: warm-up not complete after 5s; going on, the rest loads in the background");
  // One 5 s bound for both.
  const auto loaded_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  const auto left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(loaded_by -
                                                                 std::chrono::steady_clock::now());
  };
  if (!s.shared->wait_loaded(left()) || (s.shared_tickets && !s.shared_tickets->wait_loaded(left())))
    log_warning("shared state: admin state and TLS ticket keys not read from Redis yet; "
                "going on with the local ones");
}

void open_stores(Stores& s, const config::GatewayConfig& config, affinity::BackendSet& backends,
                 const affinity::Clock& clock, session::GatewayStats& stats,
                 const std::shared_ptr<tls::TicketKeys>& ticket_keys) {
  if (config.affinity_store.type != config::StoreType::kRedis) {
    auto ms = std::make_unique<affinity::MemoryAffinityStore>(config.affinity_store.capacity);
    s.memory_store = ms.get();
    s.store = std::move(ms);
    return;
  }
  const auto& rc = config.affinity_store.redis;
  const redis::RedisClient::LogSink redis_log = [](bool error, const std::string& line) {
    error ? log_warning(line) : log_info(line);
  };
  s.redis = std::make_unique<redis::RedisClient>(rc, redis_log);
  affinity::RedisAffinityStore::Options options;
  options.capacity = config.affinity_store.capacity;
  options.key_prefix = rc.key_prefix;
  options.log = redis_log;
  options.key_secret = redis_key_secret(config);
  auto rs = std::make_unique<affinity::RedisAffinityStore>(
      *s.redis, backends.server_names(), options, clock,
      [&stats] { stats.affinity_store_error(); });
  s.redis_store = rs.get();
  s.store = std::move(rs);
  // Admin state and TLS ticket keys shared with the other replicas. Built
  // and started before the client, so their subscriptions exist when the
  // client first comes up.
  affinity::SharedAdminState::Options so;
  so.key_prefix = rc.key_prefix;
  s.shared = std::make_unique<affinity::SharedAdminState>(*s.redis, backends, so, redis_log);
  s.shared->start();
  start_ticket_share(s, config, ticket_keys, redis_log);
  s.redis->start();
  warm_up_from_redis(s);
}

// Binds each listener once per worker; with port 0 the first bind picks the
// port and the others join it. False (logged) when a bind fails.
bool bind_listeners(std::vector<session::ListenerRuntime>& listeners,
                    std::vector<std::unique_ptr<Worker>>& workers,
                    std::deque<session::LogThrottle>& refusal_logs, UpgradeHandover& handover) {
  for (auto& rt : listeners) {
    tcp::endpoint ep = session::to_asio_endpoint(rt.config->endpoint);
    // Sockets inherited from the process this one upgrades come first
    // (their queued connections are accepted here); more workers than
    // sockets bind more, more sockets than workers share them out.
    const std::vector<int> inherited = ep.port() ? handover.take(listen_key(ep)) : std::vector<int>{};
    const size_t n = std::max(workers.size(), inherited.size());
    for (size_t i = 0; i < n; ++i) {
      int fd = i < inherited.size() ? inherited[i] : -1;
      std::string error;
      if (fd < 0 && (fd = open_listen_socket(ep, error)) < 0) {
        log_error("listener '" + rt.config->name + "': bind " + rt.config->bind + ": " + error);
        return false;
      }
      ep.port(bound_port(fd));
      rt.port = ep.port();
      workers[i % workers.size()]->add_acceptor(
          {rt.id, listen_key(ep), fd, ep.protocol(), &refusal_logs[rt.id]});
    }
    log_info("listener '" + rt.config->name + "' on " + rt.config->bind + (rt.tls ? " (TLS)" : "") +
             ", " + std::to_string(workers.size()) + " workers" +
             (inherited.empty() ? "" : ", " + std::to_string(inherited.size()) + " sockets inherited"));
  }
  return true;
}

// The admin listener (its own thread; it answers until the very end), or
// null when none is configured. False (logged) when it can't start.
bool start_admin(const std::shared_ptr<const config::GatewayConfig>& config,
                 affinity::BackendSet& backends, session::GatewayStats& stats,
                 HealthChecker& health, affinity::SharedAdminState* shared,
                 UpgradeHandover& handover, std::unique_ptr<AdminServer>& admin) {
  if (!config->admin) return true;
  std::string error;
  AdminHandler::Hooks hooks;
  hooks.last_check = [&health](const affinity::Server& s) { return health.last_check(s); };
  if (shared)
    hooks.on_change = [shared](const affinity::Backend& b, const affinity::Server& srv,
                               affinity::AdminState state, uint32_t weight) {
      shared->server_changed(b, srv, state, weight);
    };
  // Inherited only while its address is unchanged, as for the listeners.
  const tcp::endpoint ep = session::to_asio_endpoint(config->admin->endpoint);
  const std::vector<int> inherited = ep.port() ? handover.take(listen_key(ep)) : std::vector<int>{};
  admin = AdminServer::start(config, backends, stats, std::move(hooks), error,
                             inherited.empty() ? -1 : inherited.front());
  if (!admin) {
    log_error(error);
    return false;
  }
  log_info("admin listener on " + config->admin->bind);
  return true;
}

// Begins the graceful stop (once); `why` names the cause in the log;
// `handing_over`: a new process serves on (binary upgrade).
using StopFn = std::function<void(const std::string& why, bool handing_over)>;
// SIGUSR2: starts the new process, which calls the StopFn once it serves.
using UpgradeFn = std::function<void(StopFn)>;

// SIGUSR2: starts the new process with this one's listening sockets and
// store key; once it serves, hands it the store's entries and stops.
void begin_upgrade(const config::GatewayConfig& config, BinaryUpgrade& upgrade,
                   std::vector<std::unique_ptr<Worker>>& workers, AdminServer* admin, affinity::MemoryAffinityStore* store,
                   StoreHandover& entries, StopFn stop) {
  BinaryUpgrade::Sockets sockets;
  for (auto& w : workers)
    for (const auto& [key, fd] : w->listening_fds()) sockets.listening.emplace_back(key, fd);
  if (admin) {
    tcp::endpoint ep = session::to_asio_endpoint(config.admin->endpoint);
    ep.port(admin->port());
    sockets.listening.emplace_back(listen_key(ep), admin->native_fd());
  }
  affinity::MemoryAffinityStore::HashKey key{};
  if (store) key = store->hash_key();
  std::string error;
  const bool started = upgrade.start(
      sockets, store ? &key : nullptr,
      [&upgrade, &entries] {
        if (!entries.send_entries(upgrade)) log_warning("SIGUSR2: the new process took no affinity entries");
      },
      [stop](pid_t pid) { stop("SIGUSR2: new process " + std::to_string(pid) + " serves", true); },
      [](const std::string& why) { log_error("SIGUSR2: upgrade failed: " + why + "; still serving"); },
      error);
  if (started) {
    log_info("SIGUSR2: starting the new process (" + BinaryUpgrade::executable_path() + ")");
  } else {
    log_error("SIGUSR2: upgrade not started: " + error + "; still serving");
  }
}


// Serves signals on the main thread until a graceful stop has drained (or
// timeouts.shutdown passed and the rest was closed).
void serve_signals(asio::io_context& main_io, asio::signal_set& signals,
                   std::vector<std::unique_ptr<Worker>>& workers,
                   const std::atomic<int64_t>& connections, const UpgradeFn& upgrade,
                   Reloader& reloader) {
  asio::steady_timer drain_timer(main_io);
  // Generations a reload replaced go once nothing uses them (on this thread).
  asio::steady_timer prune_timer(main_io);
  std::function<void()> prune = [&] {
    reloader.prune();
    prune_timer.expires_after(std::chrono::seconds(1));
    prune_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) prune();
    });
  };
  prune();
  std::chrono::steady_clock::time_point stop_deadline;
  bool stopping = false;
  std::function<void()> wait_drain = [&] {
    if (connections.load() == 0 || std::chrono::steady_clock::now() >= stop_deadline) {
      if (connections.load() > 0) {
        log_warning(std::to_string(connections.load()) +
                    " connections still open at the shutdown timeout: closing them");
        for (auto& w : workers) w->force_close();
      }
      prune_timer.cancel();
      main_io.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([&](boost::system::error_code) { wait_drain(); });
  };
  const StopFn stop = [&](const std::string& why, bool handing_over) {
    if (stopping) return;
    stopping = true;
    log_info(why + ": closing listeners, finishing in-flight requests");
    if (!handing_over) ServiceNotify::stopping(why + ": finishing in-flight requests");
    for (auto& w : workers) w->begin_stop();
    stop_deadline = std::chrono::steady_clock::now() + reloader.current()->config->timeouts.shutdown;
    wait_drain();
  };
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                       int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      if (!stopping) reloader.reload();
    } else if (sig == SIGUSR2) {
      if (!stopping) upgrade(stop);
    } else {
      stop(sig == SIGTERM ? "SIGTERM" : "SIGINT", false);
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  // Memory a burst freed goes back to the kernel (memory_trim.h).
  MemoryTrim trim(main_io);
  trim.start();
  main_io.run();
  trim.stop();
}

// The workers accept: the pid file, the rest of an upgrade's hand-over,
// READY to systemd. False (logged, the workers stopping) when the pid file
// can't be written.
bool announce_serving(const config::GatewayConfig& config,
                      std::vector<std::unique_ptr<Worker>>& workers, size_t listeners,
                      PidFile& pid_file, UpgradeHandover& handover, StoreHandover& entries) {
  std::string error;
  if (!config.pid_file.empty() && !pid_file.write(config.pid_file, error)) {
    log_error("pid file: " + error + "; stopping");
    for (auto& w : workers) w->begin_stop();
    return false;
  }
  if (handover.upgrading()) entries.take_rest(handover);
  ServiceNotify::ready("serving " + std::to_string(listeners) + " listeners on " +
                           std::to_string(workers.size()) + " workers",
                       handover.upgrading());
  return true;
}

}  // namespace

int Gateway::run(std::shared_ptr<const config::GatewayConfig> config, std::vector<std::string> argv,
                 Reloader::Loader loader) {
  raise_fd_limit();
  const unsigned n_workers =
      config->workers ? config->workers : std::max(1u, std::thread::hardware_concurrency());
  // Per-worker slots (worker i writes slot i + 1), fixed before the servers,
  // stats and access log that hold them are built.
  base::set_worker_shards(n_workers + 1);
  // Registered first: a signal that arrives while the gateway starts (once a
  // listener accepts, a supervisor or a test may stop it at once) is queued
  // for serve_signals instead of killing the process.
  asio::io_context main_io(1);
  asio::signal_set signals(main_io, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGUSR2);
  BinaryUpgrade upgrade(main_io, std::move(argv));

  // One ticket key ring for every TLS listener of the process, whatever its
  // generation. It rotates itself; with Redis, TicketKeyShare feeds it the
  // replicas' keys at each epoch (each set() restarts the ring's own
  // period), so it rotates by itself only when Redis was away at start or
  // for a whole period.
  auto ticket_keys = std::make_shared<tls::TicketKeys>(kTicketRotation);
  const GenerationBuilder builder(ticket_keys);
  std::vector<std::string> errors;
  std::shared_ptr<session::Generation> gen = builder.build(config, nullptr, errors);
  if (!gen) {
    for (const auto& e : errors) log_error(e);
    return 1;
  }
  // The first generation's servers, for the life of the process: the
  // health checker's first entries, the shared admin state and the admin
  // listener's first view refer to them (later generations' servers share
  // their State). The generation itself goes once a reload replaced it.
  const std::shared_ptr<affinity::BackendSet> first_backends = gen->backends;
  affinity::BackendSet& backends = *first_backends;
  // Active health checks run on a thread of their own.
  HealthChecker health(backends, std::random_device{}());
  health.start();
  wait_first_health_round(health, *config);
  affinity::SystemClock clock;
  session::GatewayStats stats(*config);
  Stores stores;
  open_stores(stores, *config, backends, clock, stats, ticket_keys);
  // Destroyed before the stores: its reader thread fills the memory store.
  UpgradeHandover handover;
  handover.read_environment();
  StoreHandover entries(stores.memory_store, backends, clock);
  if (handover.upgrading()) {
    entries.take_key(handover);
  } else {
    entries.load(config->affinity_store.state_file);
  }

  std::atomic<int64_t> connections{0};
  // One per listener id, shared by its acceptors on every worker; declared
  // before the workers, which refer to them.
  std::deque<session::LogThrottle> refusal_logs(gen->listeners.size());
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < n_workers; ++i)
    workers.push_back(std::make_unique<Worker>(i, gen, *stores.store, stats, clock, connections));
  if (!bind_listeners(gen->listeners, workers, refusal_logs, handover)) return 1;
  std::unique_ptr<AdminServer> admin;
  if (!start_admin(config, backends, stats, health, stores.shared.get(), handover, admin)) return 1;
  handover.close_unclaimed();
  if (handover.upgrading()) entries.take_entries(handover);
  for (auto& w : workers) w->start();
  PidFile pid_file;
  const bool serving = announce_serving(*config, workers, gen->listeners.size(), pid_file, handover, entries);
  const UpgradeFn start_upgrade = [&](StopFn stop) {
    begin_upgrade(*config, upgrade, workers, admin.get(), stores.memory_store, entries, std::move(stop));
  };
  Reloader reloader(std::move(loader), builder, std::move(gen),
                    {.workers = &workers, .health = &health, .admin = admin.get(),
                     .redis_store = stores.redis_store, .entries = &entries, .stats = &stats,
                     .refusal_logs = &refusal_logs});
  if (serving) serve_signals(main_io, signals, workers, connections, start_upgrade, reloader);

  // A short grace period lets force-closed connections unwind on their own.
  for (int i = 0; i < 50 && connections.load() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (auto& w : workers) w->stop_and_join();
  workers.clear();
  if (upgrade.under_way()) {
    // The last entries this process made, after its last request.
    entries.send_entries(upgrade);
    upgrade.finish();
  }
  entries.save(config->affinity_store.state_file);  // (a reload can't change it)
  if (admin) admin->stop();
  health.stop();
  // Changes still on their way to Redis get a moment (other replicas and a
  // restart of this one read them there).
  if (stores.redis_store && !stores.redis_store->flush(std::chrono::seconds(1)))
    log_warning("redis: exiting with affinity changes not written");
  if (stores.redis) stores.redis->stop();
  pid_file.remove();
  log_info("stopped");
  return serving ? 0 : 1;
}

}  // namespace sag::gateway
