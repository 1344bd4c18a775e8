#include "tls/ticket_key_share.h"

#include <openssl/rand.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include <boost/asio/post.hpp>

#include "tls/ticket_keys.h"
#include "config/base/hex.h"

namespace sag::tls {
namespace asio = boost::asio;
using redis::RedisReply;

namespace {

constexpr std::string_view kValueTag = "v1:";

// The raw key of a stored value, or nullopt when it is not one of ours.
std::optional<std::string> parse_value(std::string_view v) {
  if (!v.starts_with(kValueTag)) return std::nullopt;
  v.remove_prefix(kValueTag.size());
  if (v.size() != TicketKey::kBytes * 2) return std::nullopt;
  return base::hex_decode(v);
}

std::optional<std::string> random_key() {
  std::string raw(TicketKey::kBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1)
    return std::nullopt;
  return raw;
}

bool failed(boost::system::error_code ec, const RedisReply& reply) { return ec || reply.is_error(); }

int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

TicketKeyShare::TicketKeyShare(redis::RedisClient& redis, Options options, Sink sink, LogSink log)
    : redis_(redis),
      options_(std::move(options)),
      sink_(std::move(sink)),
      log_(std::move(log)),
      poll_timer_(redis.io()),
      boundary_timer_(redis.io()) {
  // Until Redis answers, tickets are issued under a key of our own.
  if (auto k = random_key()) current_key_ = std::move(*k);
  redis_.on_state([this](bool up) { on_connection(up); });
  redis_.subscribe(options_.key_prefix + "tls", [this](std::string_view) {
    if (connected_) sync();
  });
  redis_.on_stop([this] {
    poll_timer_.cancel();
    boundary_timer_.cancel();
  });
}

TicketKeyShare::~TicketKeyShare() = default;

void TicketKeyShare::start() {
  asio::post(redis_.io(), [this] {
    update_keys();
    arm_boundary();
    arm_poll();
  });
}

bool TicketKeyShare::wait_loaded(std::chrono::milliseconds limit) {
  std::unique_lock lock(loaded_mutex_);
  return loaded_cv_.wait_for(lock, limit, [this] { return loaded_; });
}

bool TicketKeyShare::loaded() const {
  std::lock_guard lock(loaded_mutex_);
  return loaded_;
}

int64_t TicketKeyShare::epoch_of(std::chrono::system_clock::time_point t) const {
  const int64_t period = std::max<int64_t>(1, options_.ticket_period.count());
  const int64_t ms = unix_ms(t);
  return ms >= 0 ? ms / period : -((-ms + period - 1) / period);
}

int64_t TicketKeyShare::current_epoch() const { return epoch_of(std::chrono::system_clock::now()); }

void TicketKeyShare::log(bool error, const std::string& line) const {
  if (log_) log_(error, "shared state: " + line);
}

void TicketKeyShare::on_connection(bool up) {
  connected_ = up;
  if (up) sync();
}

void TicketKeyShare::mark_loaded() {
  {
    std::lock_guard lock(loaded_mutex_);
    if (loaded_) return;
    loaded_ = true;
  }
  loaded_cv_.notify_all();
}

void TicketKeyShare::arm_poll() {
  poll_timer_.expires_after(options_.poll_interval);
  poll_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (connected_) sync();
    arm_poll();
  });
}

std::string TicketKeyShare::key_name(int64_t epoch) const {
  return options_.key_prefix + "tls:ticket:" + std::to_string(epoch);
}

void TicketKeyShare::sync() {
  const int64_t e = current_epoch();
  const auto ttl_ms = std::to_string(std::max<int64_t>(1, options_.ticket_period.count()) * 4);
  for (int64_t ep = e - 1; ep <= e + 1; ++ep) {
    std::string raw;
    if (auto known = epoch_keys_.find(ep); known != epoch_keys_.end()) {
      raw = known->second;  // written back if Redis lost it
    } else if (ep == e - 1) {
      continue;  // a past epoch nobody made: nothing to create
    } else if (auto fresh = random_key()) {
      raw = std::move(*fresh);
    } else {
      continue;
    }
    redis_.command({"SET", key_name(ep), std::string(kValueTag) + base::hex_encode(raw), "NX", "PX", ttl_ms},
                   [this, ep](boost::system::error_code ec, const RedisReply& reply) {
                     if (failed(ec, reply) || reply.type != RedisReply::Type::kStatus) return;
                     // We made (or restored) epoch ep's key: tell the others.
                     redis_.command({"PUBLISH", options_.key_prefix + "tls", std::to_string(ep)},
                                    [](boost::system::error_code, const RedisReply&) {});
                   });
  }
  redis_.command({"MGET", key_name(e - 1), key_name(e), key_name(e + 1)},
                 [this, e](boost::system::error_code ec, const RedisReply& reply) {
                   if (failed(ec, reply) || reply.type != RedisReply::Type::kArray ||
                       reply.elements.size() != 3) {
                     return;
                   }
                   for (int64_t i = 0; i < 3; ++i) {
                     const auto& el = reply.elements[static_cast<size_t>(i)];
                     if (el.type != RedisReply::Type::kString) continue;
                     auto raw = parse_value(el.str);
                     if (!raw) {
                       log(true, "ignoring a malformed TLS ticket key in " + key_name(e - 1 + i));
                       continue;
                     }
                     epoch_keys_[e - 1 + i] = std::move(*raw);
                   }
                   // Keys older than the previous epoch never decrypt again.
                   epoch_keys_.erase(epoch_keys_.begin(), epoch_keys_.lower_bound(current_epoch() - 1));
                   update_keys();
                   mark_loaded();
                 });
}

void TicketKeyShare::update_keys() {
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
  if (sink_) sink_(current_key_, decrypt);
}

void TicketKeyShare::arm_boundary() {
  const auto now = std::chrono::system_clock::now();
  const int64_t period = std::max<int64_t>(1, options_.ticket_period.count());
  const int64_t next_ms = (epoch_of(now) + 1) * period;
  // A little past the boundary, so the epoch computed then is the new one.
  const auto wait = std::chrono::milliseconds(next_ms - unix_ms(now) + 20);
  boundary_timer_.expires_after(wait);
  boundary_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    update_keys();  // switches even while Redis is away, when E+1 was fetched
    if (connected_) sync();
    arm_boundary();
  });
}

}  // namespace sag::tls
