#include "affinity/shared_state.h"

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include <boost/asio/post.hpp>

namespace sag::affinity {
namespace asio = boost::asio;

namespace {

constexpr std::string_view kTicketValueTag = "v1:";

// A weight past the admin API's limit is not ours.
std::optional<uint32_t> parse_weight(std::string_view s) {
  uint32_t w = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), w);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || w > kMaxWeight) return std::nullopt;
  return w;
}

std::string to_hex(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The raw key of a stored value, or nullopt when it is not one of ours.
std::optional<std::string> parse_ticket_value(std::string_view v) {
  if (!v.starts_with(kTicketValueTag)) return std::nullopt;
  v.remove_prefix(kTicketValueTag.size());
  if (v.size() != SharedState::kTicketKeyBytes * 2) return std::nullopt;
  std::string raw(SharedState::kTicketKeyBytes, '\0');
  for (size_t i = 0; i < raw.size(); ++i) {
    int hi = hex_digit(v[2 * i]), lo = hex_digit(v[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    raw[i] = static_cast<char>(hi << 4 | lo);
  }
  return raw;
}

std::optional<std::string> random_ticket_key() {
  std::string raw(SharedState::kTicketKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1)
    return std::nullopt;
  return raw;
}

bool failed(boost::system::error_code ec, const RedisReply& reply) { return ec || reply.is_error(); }

int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct SharedState::Entry {
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

SharedState::SharedState(RedisClient& redis, BackendSet& backends, Options options, TicketSink tickets,
                         LogSink log)
    : redis_(redis),
      options_(std::move(options)),
      ticket_sink_(std::move(tickets)),
      log_(std::move(log)),
      poll_timer_(redis.io()),
      boundary_timer_(redis.io()) {
  for (const auto& b : backends.backends()) {
    for (Server* s : b->servers()) {
      auto e = std::make_unique<Entry>();
      e->backend = b.get();
      e->server = s;
      e->key = options_.key_prefix + "admin:" + b->name() + ":" + s->name();
      e->announce = b->name() + "\n" + s->name();
      by_server_.emplace(s, e.get());
      entries_.push_back(std::move(e));
    }
  }
  if (options_.tickets) {
    // Until Redis answers, tickets are issued under a key of our own.
    if (auto k = random_ticket_key()) current_key_ = std::move(*k);
  }
  redis_.on_state([this](bool up) { on_connection(up); });
  redis_.subscribe(options_.key_prefix + "admin", [this](std::string_view payload) { on_admin_message(payload); });
  if (options_.tickets) {
    redis_.subscribe(options_.key_prefix + "tls", [this](std::string_view) {
      if (connected_) sync_tickets();
    });
  }
  redis_.on_stop([this] {
    poll_timer_.cancel();
    boundary_timer_.cancel();
  });
}

SharedState::~SharedState() = default;

void SharedState::start() {
  asio::post(redis_.io(), [this] {
    if (options_.tickets) {
      update_ticket_keys();
      arm_boundary();
    }
    arm_poll();
  });
}

bool SharedState::wait_loaded(std::chrono::milliseconds limit) {
  std::unique_lock lock(loaded_mutex_);
  return loaded_cv_.wait_for(lock, limit, [this] { return loaded_; });
}

bool SharedState::loaded() const {
  std::lock_guard lock(loaded_mutex_);
  return loaded_;
}

int64_t SharedState::epoch_of(std::chrono::system_clock::time_point t) const {
  const int64_t period = std::max<int64_t>(1, options_.ticket_period.count());
  const int64_t ms = unix_ms(t);
  return ms >= 0 ? ms / period : -((-ms + period - 1) / period);
}

int64_t SharedState::current_epoch() const { return epoch_of(std::chrono::system_clock::now()); }

void SharedState::log(bool error, const std::string& line) const {
  if (log_) log_(error, "shared state: " + line);
}

// --- admin state -------------------------------------------------------------

void SharedState::server_changed(const Backend& backend, const Server& server, AdminState state,
                                 uint32_t weight) {
  auto it = by_server_.find(&server);
  if (it == by_server_.end() || it->second->backend != &backend) return;
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

void SharedState::write(Entry& e) {
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

void SharedState::flush_pending() {
  for (auto& e : entries_) write(*e);
}

void SharedState::read_all_admin() {
  if (entries_.empty()) {
    mark_loaded(true);
    return;
  }
  struct Round {
    size_t remaining;
    bool ok = true;
  };
  auto round = std::make_shared<Round>(Round{entries_.size()});
  for (auto& e : entries_) {
    read_admin(*e, [this, round](bool ok) {
      round->ok = round->ok && ok;
      if (--round->remaining == 0 && round->ok) mark_loaded(true);
    });
  }
}

void SharedState::read_admin(Entry& e, std::function<void(bool ok)> done) {
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

void SharedState::apply(Entry& e, const RedisReply& reply) {
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

void SharedState::on_admin_message(std::string_view payload) {
  const size_t nl = payload.find('\n');
  if (nl == std::string_view::npos) return;
  const std::string_view backend = payload.substr(0, nl), server = payload.substr(nl + 1);
  for (auto& e : entries_) {
    if (e->backend->name() == backend && e->server->name() == server) {
      read_admin(*e, [](bool) {});
      return;
    }
  }
}

void SharedState::on_connection(bool up) {
  connected_ = up;
  if (!up) return;
  // Writes first: the reads below go out after them on the same connection.
  flush_pending();
  read_all_admin();
  if (options_.tickets) sync_tickets();
}

void SharedState::mark_loaded(bool admin_part) {
  (admin_part ? admin_loaded_ : tickets_loaded_) = true;
  if (!admin_loaded_ || (options_.tickets && !tickets_loaded_)) return;
  {
    std::lock_guard lock(loaded_mutex_);
    if (loaded_) return;
    loaded_ = true;
  }
  loaded_cv_.notify_all();
}

void SharedState::arm_poll() {
  poll_timer_.expires_after(options_.poll_interval);
  poll_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (connected_) {
      flush_pending();
      read_all_admin();
      if (options_.tickets) sync_tickets();
    }
    arm_poll();
  });
}

// --- ticket keys -------------------------------------------------------------

std::string SharedState::ticket_key_name(int64_t epoch) const {
  return options_.key_prefix + "tls:ticket:" + std::to_string(epoch);
}

void SharedState::sync_tickets() {
  const int64_t e = current_epoch();
  const auto ttl_ms = std::to_string(std::max<int64_t>(1, options_.ticket_period.count()) * 4);
  for (int64_t ep = e - 1; ep <= e + 1; ++ep) {
    std::string raw;
    if (auto known = epoch_keys_.find(ep); known != epoch_keys_.end()) {
      raw = known->second;  // written back if Redis lost it
    } else if (ep == e - 1) {
      continue;  // a past epoch nobody made: nothing to create
    } else if (auto fresh = random_ticket_key()) {
      raw = std::move(*fresh);
    } else {
      continue;
    }
    redis_.command({"SET", ticket_key_name(ep), std::string(kTicketValueTag) + to_hex(raw), "NX", "PX", ttl_ms},
                   [this, ep](boost::system::error_code ec, const RedisReply& reply) {
                     if (failed(ec, reply) || reply.type != RedisReply::Type::kStatus) return;
                     // We made (or restored) epoch ep's key: tell the others.
                     redis_.command({"PUBLISH", options_.key_prefix + "tls", std::to_string(ep)},
                                    [](boost::system::error_code, const RedisReply&) {});
                   });
  }
  redis_.command({"MGET", ticket_key_name(e - 1), ticket_key_name(e), ticket_key_name(e + 1)},
                 [this, e](boost::system::error_code ec, const RedisReply& reply) {
                   if (failed(ec, reply) || reply.type != RedisReply::Type::kArray ||
                       reply.elements.size() != 3) {
                     return;
                   }
                   for (int64_t i = 0; i < 3; ++i) {
                     const auto& el = reply.elements[static_cast<size_t>(i)];
                     if (el.type != RedisReply::Type::kString) continue;
                     auto raw = parse_ticket_value(el.str);
                     if (!raw) {
                       log(true, "ignoring a malformed TLS ticket key in " + ticket_key_name(e - 1 + i));
                       continue;
                     }
                     epoch_keys_[e - 1 + i] = std::move(*raw);
                   }
                   // Keys older than the previous epoch never decrypt again.
                   epoch_keys_.erase(epoch_keys_.begin(), epoch_keys_.lower_bound(current_epoch() - 1));
                   update_ticket_keys();
                   mark_loaded(false);
                 });
}

void SharedState::update_ticket_keys() {
  const int64_t e = current_epoch();
  if (auto it = epoch_keys_.find(e); it != epoch_keys_.end() && it->second != current_key_) {
    previous_key_ = std::exchange(current_key_, it->second);
    log(false, "TLS ticket keys: now encrypting with epoch " + std::to_string(e) + "'s key");
  }
  if (current_key_.empty()) return;
  std::vector<std::string> decrypt;
  auto add = [&](const std::string& k) {
    if (!k.empty() && k != current_key_ && std::find(decrypt.begin(), decrypt.end(), k) == decrypt.end())
      decrypt.push_back(k);
  };
  add(previous_key_);
  for (int64_t ep : {e - 1, e + 1})
    if (auto it = epoch_keys_.find(ep); it != epoch_keys_.end()) add(it->second);
  std::string set = current_key_;
  for (const auto& k : decrypt) set += k;
  if (set == sent_) return;
  sent_ = std::move(set);
  if (ticket_sink_) ticket_sink_(current_key_, decrypt);
}

void SharedState::arm_boundary() {
  const auto now = std::chrono::system_clock::now();
  const int64_t period = std::max<int64_t>(1, options_.ticket_period.count());
  const int64_t next_ms = (epoch_of(now) + 1) * period;
  // A little past the boundary, so the epoch computed then is the new one.
  const auto wait = std::chrono::milliseconds(next_ms - unix_ms(now) + 20);
  boundary_timer_.expires_after(wait);
  boundary_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    update_ticket_keys();  // switches even while Redis is away, when E+1 was fetched
    if (connected_) sync_tickets();
    arm_boundary();
  });
}

}  // namespace sag::affinity
