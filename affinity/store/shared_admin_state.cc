#include "affinity/store/shared_admin_state.h"

#include <charconv>
#include <utility>

#include <boost/asio/post.hpp>

namespace sag::affinity {
namespace asio = boost::asio;
using redis::RedisReply;

namespace {

// A weight past the admin API's limit is not ours.
std::optional<uint32_t> parse_weight(std::string_view s) {
  uint32_t w = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), w);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || w > kMaxWeight) return std::nullopt;
  return w;
}

bool failed(boost::system::error_code ec, const RedisReply& reply) { return ec || reply.is_error(); }

}  // namespace

struct SharedAdminState::Entry {
  Backend* backend = nullptr;
  Server* server = nullptr;
  std::string key;       // PREFIX admin:BACKEND:SERVER
  std::string announce;  // BACKEND \n SERVER
  // Bumped (any thread) as soon as the admin API changed the server: a read
  // issued before that must not overwrite the change.
  std::atomic<uint64_t> local_seq{0};
  // Client thread: the change not yet confirmed written, and its sequence.
  std::optional<Write> pending;
  uint64_t pending_seq = 0;
};

SharedAdminState::SharedAdminState(redis::RedisClient& redis, BackendSet& backends, Options options, LogSink log)
    : redis_(redis), options_(std::move(options)), log_(std::move(log)), poll_timer_(redis.io()) {
  for (const auto& b : backends.backends()) {
    for (Server* s : b->servers()) {
      auto e = std::make_unique<Entry>();
      e->backend = b.get();
      e->server = s;
      e->key = options_.key_prefix + "admin:" + b->name() + ":" + s->name();
      e->announce = b->name() + "\n" + s->name();
      by_server_.emplace(s->state().get(), e.get());
      entries_.push_back(std::move(e));
    }
  }
  redis_.on_state([this](bool up) { on_connection(up); });
  redis_.subscribe(options_.key_prefix + "admin", [this](std::string_view payload) { on_message(payload); });
  redis_.on_stop([this] { poll_timer_.cancel(); });
}

SharedAdminState::~SharedAdminState() = default;

void SharedAdminState::start() {
  asio::post(redis_.io(), [this] { arm_poll(); });
}

bool SharedAdminState::wait_loaded(std::chrono::milliseconds limit) {
  std::unique_lock lock(loaded_mutex_);
  return loaded_cv_.wait_for(lock, limit, [this] { return loaded_; });
}

bool SharedAdminState::loaded() const {
  std::lock_guard lock(loaded_mutex_);
  return loaded_;
}

void SharedAdminState::log(bool error, const std::string& line) const {
  if (log_) log_(error, "shared state: " + line);
}

void SharedAdminState::server_changed(const Backend& backend, const Server& server, AdminState state,
                                      uint32_t weight) {
  auto it = by_server_.find(server.state().get());
  if (it == by_server_.end() || it->second->backend->name() != backend.name()) return;
  Entry* e = it->second;
  const Write w{state, weight};
  // The sequence first: a read reply handled after this is not applied.
  // Then the values again, here (the caller's thread: the change is in
  // place when it returns) and on the client thread: a reply checked just
  // before the sequence moved may be applied after the first of these,
  // never after the second.
  const uint64_t seq = e->local_seq.fetch_add(1) + 1;
  e->server->apply_admin(w.state, w.weight, std::chrono::steady_clock::now());
  asio::post(redis_.io(), [this, e, w, seq] {
    e->server->apply_admin(w.state, w.weight, std::chrono::steady_clock::now());
    e->pending = w;
    e->pending_seq = seq;
    write(*e);
  });
}

void SharedAdminState::write(Entry& e) {
  if (!e.pending) return;
  const Write w = *e.pending;
  const uint64_t seq = e.pending_seq;
  redis_.command({"HSET", e.key, "state", to_string(w.state), "weight", std::to_string(w.weight)},
                 [this, &e, seq](boost::system::error_code ec, const RedisReply& reply) {
                   if (failed(ec, reply)) {
                     // Kept pending: written again when Redis is back.
                     log(true, "cannot write the admin state of " + e.backend->name() + "/" + e.server->name() +
                                   " to Redis (" + (ec ? ec.message() : reply.str) +
                                   "); it will be written when Redis is back");
                     return;
                   }
                   if (e.pending && e.pending_seq == seq) e.pending.reset();
                   redis_.command({"PUBLISH", options_.key_prefix + "admin", e.announce},
                                  [](boost::system::error_code, const RedisReply&) {});
                 });
}

void SharedAdminState::flush_pending() {
  for (auto& e : entries_) write(*e);
}

void SharedAdminState::read_all() {
  if (entries_.empty()) {
    mark_loaded();
    return;
  }
  struct Round {
    size_t remaining;
    bool ok = true;
  };
  auto round = std::make_shared<Round>(Round{entries_.size()});
  for (auto& e : entries_) {
    read(*e, [this, round](bool ok) {
      round->ok = round->ok && ok;
      if (--round->remaining == 0 && round->ok) mark_loaded();
    });
  }
}

void SharedAdminState::read(Entry& e, std::function<void(bool ok)> done) {
  // A local change not yet written: Redis is behind us, don't read it back.
  if (e.pending) {
    done(true);
    return;
  }
  const uint64_t seq = e.local_seq.load();
  redis_.command({"HGETALL", e.key},
                 [this, &e, seq, done = std::move(done)](boost::system::error_code ec, const RedisReply& reply) {
                   const bool ok = !failed(ec, reply) && reply.type == RedisReply::Type::kArray;
                   // A change made here after the read was sent wins; its
                   // announcement brings a fresh read.
                   if (ok && !e.pending && e.local_seq.load() == seq) apply(e, reply);
                   done(ok);
                 });
}

void SharedAdminState::apply(Entry& e, const RedisReply& reply) {
  std::optional<AdminState> state;
  std::optional<uint32_t> weight;
  bool bad = false;
  const auto& el = reply.elements;
  for (size_t i = 0; i + 1 < el.size(); i += 2) {
    if (el[i].str == "state") {
      state = parse_admin_state(el[i + 1].str);
      bad = bad || !state;
    } else if (el[i].str == "weight") {
      weight = parse_weight(el[i + 1].str);
      bad = bad || !weight;
    }
  }
  if (bad) log(true, "ignoring a malformed state or weight in Redis key " + e.key);
  const std::string change = e.server->apply_admin(state, weight, std::chrono::steady_clock::now());
  if (!change.empty()) {
    applied_.fetch_add(1, std::memory_order_relaxed);
    log(false, e.backend->name() + "/" + e.server->name() + change + " (from Redis)");
  }
}

void SharedAdminState::on_message(std::string_view payload) {
  const size_t nl = payload.find('\n');
  if (nl == std::string_view::npos) return;
  const std::string_view backend = payload.substr(0, nl), server = payload.substr(nl + 1);
  for (auto& e : entries_) {
    if (e->backend->name() == backend && e->server->name() == server) {
      read(*e, [](bool) {});
      return;
    }
  }
}

void SharedAdminState::on_connection(bool up) {
  connected_ = up;
  if (!up) return;
  // Writes first: the reads below go out after them on the same connection.
  flush_pending();
  read_all();
}

void SharedAdminState::mark_loaded() {
  {
    std::lock_guard lock(loaded_mutex_);
    if (loaded_) return;
    loaded_ = true;
  }
  loaded_cv_.notify_all();
}

void SharedAdminState::arm_poll() {
  poll_timer_.expires_after(options_.poll_interval);
  poll_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (connected_) {
      flush_pending();
      read_all();
    }
    arm_poll();
  });
}

}  // namespace sag::affinity
