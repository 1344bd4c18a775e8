#include "gateway/reloader.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "affinity/store/redis_affinity_store.h"
#include "gateway/admin/admin_server.h"
#include "gateway/health_checker.h"
#include "gateway/listen_socket.h"
#include "gateway/log.h"
#include "gateway/service_notify.h"
#include "gateway/store_handover.h"
#include "gateway/upgrade_handover.h"
#include "gateway/worker.h"
#include "session/asio_endpoint.h"
#include "session/gateway_stats.h"

namespace sag::gateway {
using tcp = boost::asio::ip::tcp;

namespace {
constexpr std::string_view kNoLoader = "this process was started without a config file to read again";
}  // namespace

Reloader::Reloader(Loader loader, const GenerationBuilder& builder,
                   std::shared_ptr<const session::Generation> first, Parts parts)
    : loader_(std::move(loader)),
      builder_(builder),
      first_backends_(first->backends),
      current_(std::move(first)),
      parts_(parts) {}

bool Reloader::reload() {
  ServiceNotify::reloading();
  log_info("SIGHUP: reloading " + current_->config->source_path);
  std::vector<std::string> errors;
  std::vector<Opened> opened;
  std::shared_ptr<const config::GatewayConfig> config;
  if (loader_) {
    config = loader_(errors);
  } else {
    errors.emplace_back(kNoLoader);
  }
  std::shared_ptr<session::Generation> next;
  if (config) next = builder_.build(config, current_.get(), errors);
  if (next) open_new_listeners(*next, opened, errors);
  if (!errors.empty() || !next) {
    refused(errors, opened);
    return false;
  }
  warn_unapplied(*current_->config, *config);

  // Committed from here on: nothing below can fail.
  next->backends->commit(current_->backends.get());
  parts_.health->update(next->backends);
  if (parts_.redis_store) parts_.redis_store->update_servers(next->backends->server_names());
  parts_.entries->set_backends(*next->backends);
  if (parts_.admin) {
    std::vector<uint32_t> ids;
    for (const auto& l : next->listeners) ids.push_back(l.id);
    parts_.admin->handler().update(config, *next->backends, std::move(ids), next);
  }
  std::shared_ptr<const session::Generation> published = next;
  switch_workers(published, std::move(opened));
  const std::string changes = describe_reload(*current_, *published);
  retired_.push_back(std::move(current_));
  current_ = std::move(published);
  prune();
  parts_.stats->reload_done(true, std::chrono::system_clock::now());
  log_info("SIGHUP: configuration reloaded (generation " + std::to_string(current_->number) + ")" +
           changes);
  ServiceNotify::ready("serving generation " + std::to_string(current_->number) + " of the configuration",
                       false);
  return true;
}

void Reloader::refused(const std::vector<std::string>& errors, std::vector<Opened>& opened) const {
  for (const auto& o : opened) ::close(o.fd);
  opened.clear();
  for (const auto& e : errors) log_error("SIGHUP: " + e);
  log_error("SIGHUP: reload refused (" + std::to_string(errors.size()) +
            (errors.size() == 1 ? " error" : " errors") + "); nothing changed, generation " +
            std::to_string(current_->number) + " still serves");
  parts_.stats->reload_done(false, std::chrono::system_clock::now());
  ServiceNotify::ready("reload refused; serving generation " + std::to_string(current_->number) +
                           " of the configuration",
                       false);
}

bool Reloader::open_new_listeners(session::Generation& next, std::vector<Opened>& opened,
                                  std::vector<std::string>& errors) const {
  const size_t workers = parts_.workers->size();
  for (auto& rt : next.listeners) {
    if (current_->listener(rt.id) &&
        session::to_asio_endpoint(current_->listener(rt.id)->config->endpoint) ==
            session::to_asio_endpoint(rt.config->endpoint))
      continue;  // kept: its sockets stay
    tcp::endpoint ep = session::to_asio_endpoint(rt.config->endpoint);
    for (size_t i = 0; i < workers; ++i) {
      std::string error;
      const int fd = open_listen_socket(ep, error);
      if (fd < 0) {
        errors.push_back("listener '" + rt.config->name + "': bind " + rt.config->bind + ": " + error);
        return false;
      }
      // With port 0 the first bind picks the port and the others join it.
      ep.port(bound_port(fd));
      rt.port = ep.port();
      opened.push_back({rt.id, listen_key(ep), fd, ep.address().is_v6()});
    }
  }
  return true;
}

void Reloader::warn_unapplied(const config::GatewayConfig& before,
                              const config::GatewayConfig& after) const {
  std::vector<std::string> kept;
  if (before.workers != after.workers) kept.push_back("workers");
  if (before.pid_file != after.pid_file) kept.push_back("pid_file");
  if (before.admin.has_value() != after.admin.has_value() ||
      (before.admin && before.admin->bind != after.admin->bind))
    kept.push_back("admin.bind");
  const auto& a = before.affinity_store;
  const auto& b = after.affinity_store;
  if (a.type != b.type || a.capacity != b.capacity || a.state_file != b.state_file ||
      a.redis.address != b.redis.address || a.redis.sentinel_addresses != b.redis.sentinel_addresses ||
      a.redis.sentinel_master != b.redis.sentinel_master || a.redis.key_prefix != b.redis.key_prefix ||
      a.redis.db != b.redis.db || a.redis.password != b.redis.password ||
      a.redis.key_secret != b.redis.key_secret)
    kept.push_back("affinity_store");
  if (kept.empty()) return;
  std::string list;
  for (const auto& k : kept) list += (list.empty() ? "" : ", ") + k;
  log_warning("SIGHUP: changes to " + list +
              " take effect at the next restart or binary upgrade (SIGUSR2); the rest is applied");
}

void Reloader::switch_workers(const std::shared_ptr<const session::Generation>& next,
                              std::vector<Opened> opened) const {
  // Refusal logs for new listener ids, before any worker can use them.
  for (const auto& rt : next->listeners)
    while (parts_.refusal_logs->size() <= rt.id) parts_.refusal_logs->emplace_back();
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
  };
  auto pending = std::make_shared<Pending>();
  auto& workers = *parts_.workers;
  pending->left = workers.size();
  for (size_t w = 0; w < workers.size(); ++w) {
    // Worker w gets the w-th socket of each new listener.
    std::vector<Worker::NewAcceptor> mine;
    size_t nth = 0;
    for (size_t i = 0; i < opened.size(); ++i) {
      if (i > 0 && opened[i].listener != opened[i - 1].listener) nth = 0;
      if (nth++ != w) continue;
      mine.push_back({opened[i].listener, opened[i].key, opened[i].fd,
                      opened[i].v6 ? tcp::v6() : tcp::v4(), &(*parts_.refusal_logs)[opened[i].listener]});
    }
    workers[w]->adopt(next, std::move(mine), [pending] {
      std::lock_guard lock(pending->mu);
      if (--pending->left == 0) pending->cv.notify_all();
    });
  }
  std::unique_lock lock(pending->mu);
  if (!pending->cv.wait_for(lock, std::chrono::seconds(5), [&] { return pending->left == 0; }))
    log_warning("SIGHUP: " + std::to_string(pending->left) +
                " workers have not taken the new configuration after 5s; they will");
}

void Reloader::prune() {
  std::erase_if(retired_, [](const auto& g) { return g.use_count() == 1; });
}

namespace {

void append_names(std::string& out, const char* what, const std::vector<std::string>& names) {
  if (names.empty()) return;
  out += out.empty() ? "; " : ", ";
  out += what;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : " ") + names[i];
}

}  // namespace

std::string describe_reload(const session::Generation& before, const session::Generation& next) {
  std::vector<std::string> added, removed, b_added, b_removed, l_opened, l_closed;
  for (const auto& b : next.backends->backends()) {
    const affinity::Backend* old = before.backends->find(b->name());
    if (!old) {
      b_added.push_back(b->name());
      continue;
    }
    for (const affinity::Server* s : b->servers()) {
      const affinity::Server* o = old->find_server(s->name());
      if (!o || o->state() != s->state()) added.push_back(b->name() + "/" + s->name());
    }
    for (const affinity::Server* o : old->servers())
      if (!b->find_server(o->name())) removed.push_back(b->name() + "/" + o->name());
  }
  for (const auto& old : before.backends->backends())
    if (!next.backends->find(old->name())) b_removed.push_back(old->name());
  size_t certificates = 0;
  for (const auto& l : next.listeners) {
    if (l.tls) ++certificates;
    if (!before.listener(l.id)) l_opened.push_back(l.config->name + " (" + l.config->bind + ")");
  }
  for (const auto& l : before.listeners)
    if (!next.listener(l.id)) l_closed.push_back(l.config->name + " (" + l.config->bind + ")");
  std::string out;
  append_names(out, "servers added:", added);
  append_names(out, "servers removed:", removed);
  append_names(out, "backends added:", b_added);
  append_names(out, "backends removed:", b_removed);
  append_names(out, "listeners opened:", l_opened);
  append_names(out, "listeners closed:", l_closed);
  if (certificates)
    out += (out.empty() ? "; " : ", ") + std::string("TLS certificates loaded for ") +
           std::to_string(certificates) + (certificates == 1 ? " listener" : " listeners");
  if (out.empty()) out = "; no server or listener changed";
  return out;
}

}  // namespace sag::gateway
