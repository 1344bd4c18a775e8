#include "affinity/redis_affinity_store.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "affinity/memory_affinity_store.h"

namespace sag::affinity {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Keys are sealed under HMAC-SHA256(secret, kKeyLabel)[0..16); without a
// secret, under this one.
constexpr std::string_view kKeyLabel = "sag affinity-store key v1";
constexpr std::string_view kBuiltInSecret = "sag affinity-store: no key secret configured";

// The replica's marker: whether it was still there, and set again.
// KEYS[1] marker; ARGV: PX.
constexpr const char* kMarkScript =
    "local had = redis.call('EXISTS', KEYS[1]) "
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) return had";

// Set (a change: unconditionally) and announce, atomically, so that
// announcements come in the order Redis applied the writes.
// KEYS[1] key; ARGV: server name, PX (0 = no expiry), channel, message.
constexpr const char* kSetScript =
    "if ARGV[2] == '0' then redis.call('SET', KEYS[1], ARGV[1]) "
    "else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end "
    "redis.call('PUBLISH', ARGV[3], ARGV[4]) return 1";
// A TTL refresh: only while the key still names the same server (or is
// gone), so it never undoes a change another replica made meanwhile.
constexpr const char* kRefreshScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if v and v ~= ARGV[1] then return 0 end "
    "if ARGV[2] == '0' then redis.call('SET', KEYS[1], ARGV[1]) "
    "else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end "
    "redis.call('PUBLISH', ARGV[3], ARGV[4]) return 1";
// KEYS[1] key; ARGV: channel, message.
constexpr const char* kDeleteScript =
    "redis.call('DEL', KEYS[1]) redis.call('PUBLISH', ARGV[1], ARGV[2]) return 1";
// Value and PTTL of each key, flattened (a missing value is nil).
constexpr const char* kLoadScript =
    "local out = {} for i, k in ipairs(KEYS) do "
    "out[2 * i - 1] = redis.call('GET', k) out[2 * i] = redis.call('PTTL', k) end return out";

// How far past the expiry Redis has a re-put one must be before it is
// written (refresh_slack(), as SPEC §4 refreshes cookie dates).
int64_t refresh_slack_ns(Duration ttl) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(refresh_slack(ttl)).count();
}

// Heterogeneous lookup: names are looked up by string_view, without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

bool plain_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && std::strchr("._~!$&'()+,;=@/-", c) != nullptr);
}

void encode_part(std::string& out, std::string_view part) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : part) {
    if (plain_byte(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool decode_part(std::string& out, std::string_view part) {
  for (size_t i = 0; i < part.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(part[i]);
    if (c == '%') {
      if (i + 2 >= part.size()) return false;
      const int hi = hex_value(part[i + 1]), lo = hex_value(part[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plain_byte(c)) {
      out += static_cast<char>(c);
    } else {
      return false;
    }
  }
  return true;
}

// SCAN MATCH treats * ? [ ] \ specially: the prefix is taken literally.
std::string glob_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::strchr("*?[]\\", c) != nullptr) out += '\\';
    out += c;
  }
  return out;
}

std::string random_origin() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    std::random_device rd;
    v = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid());
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 0; i < 16; ++i) out[i] = kHex[(v >> (4 * i)) & 15];
  return out;
}

std::string_view backend_of(std::string_view key) { return key.substr(0, key.find('\0')); }

// Where the kind is in "<backend>\0<kind>\0<value>", npos when the key is
// not of that form.
size_t kind_at(std::string_view key) {
  const size_t nul = key.find('\0');
  if (nul == std::string_view::npos || key.size() < nul + 3 || key[nul + 2] != '\0') return std::string_view::npos;
  return nul + 1;
}

bool lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

RedisAffinityStore::KeySealer::KeySealer(std::string_view secret) {
  if (secret.empty()) secret = kBuiltInSecret;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(kKeyLabel.data()), kKeyLabel.size(), mac, &len) ||
      len < 16)
    throw std::runtime_error("affinity store: HMAC-SHA256 failed");
  for (int i = 7; i >= 0; --i) {
    k0_ = (k0_ << 8) | mac[i];
    k1_ = (k1_ << 8) | mac[8 + i];
  }
  OPENSSL_cleanse(mac, sizeof mac);
}

void RedisAffinityStore::KeySealer::seal(std::string_view key, std::string& out) const {
  const size_t k = kind_at(key);
  if (k == std::string_view::npos || key[k] < 'A' || key[k] > 'Z') {
    out.assign(key);
    return;
  }
  const MemoryAffinityStore::Fingerprint fp = MemoryAffinityStore::siphash128(key, {k0_, k1_});
  static constexpr char kHex[] = "0123456789abcdef";
  char digest[kDigestChars];
  for (int i = 0; i < 8; ++i) {  // the output bytes in order: lo, then hi, little-endian
    const auto lo = static_cast<unsigned char>(fp.lo >> (8 * i)), hi = static_cast<unsigned char>(fp.hi >> (8 * i));
    digest[2 * i] = kHex[lo >> 4];
    digest[2 * i + 1] = kHex[lo & 15];
    digest[16 + 2 * i] = kHex[hi >> 4];
    digest[16 + 2 * i + 1] = kHex[hi & 15];
  }
  out.assign(key.substr(0, k));
  out += static_cast<char>(key[k] - 'A' + 'a');
  out += '\0';
  out.append(digest, kDigestChars);
}

std::optional<std::string> RedisAffinityStore::KeySealer::accept(std::string key) const {
  const size_t k = kind_at(key);
  if (k == std::string_view::npos) return std::nullopt;
  const char kind = key[k];
  if (kind >= 'A' && kind <= 'Z') return seal(key);
  if (kind < 'a' || kind > 'z' || key.size() != k + 2 + kDigestChars) return std::nullopt;
  for (size_t i = k + 2; i < key.size(); ++i)
    if (!lower_hex(key[i])) return std::nullopt;
  return key;
}

std::string RedisAffinityStore::encode_key(std::string_view prefix, std::string_view key) {
  std::string out;
  out.reserve(prefix.size() + 2 + key.size() + 16);
  out.append(prefix);
  out += "a:";
  // "<backend>\0<kind>\0<value>": the value may itself hold NUL bytes (a
  // masked address), so only the first two separate parts.
  for (int part = 0; part < 2; ++part) {
    const size_t nul = key.find('\0');
    if (nul == std::string_view::npos) break;
    encode_part(out, key.substr(0, nul));
    out += ':';
    key.remove_prefix(nul + 1);
  }
  encode_part(out, key);
  return out;
}

std::optional<std::string> RedisAffinityStore::decode_key(std::string_view prefix, std::string_view redis_key) {
  if (redis_key.size() < prefix.size() + 2 || redis_key.substr(0, prefix.size()) != prefix ||
      redis_key.substr(prefix.size(), 2) != "a:")
    return std::nullopt;
  std::string_view rest = redis_key.substr(prefix.size() + 2);
  std::string out;
  for (int part = 0; part < 2; ++part) {
    const size_t colon = rest.find(':');
    if (colon == std::string_view::npos) break;
    if (!decode_part(out, rest.substr(0, colon))) return std::nullopt;
    out += '\0';
    rest.remove_prefix(colon + 1);
  }
  if (!decode_part(out, rest)) return std::nullopt;  // a further ':' is not ours
  return out;
}

std::vector<RedisAffinityStore::BackendServers> RedisAffinityStore::server_names(const BackendSet& backends) {
  std::vector<BackendServers> out;
  for (const auto& b : backends.backends()) {
    BackendServers bs;
    bs.backend = b->name();
    for (const Server* s : b->servers()) bs.servers.push_back(s->name());
    out.push_back(std::move(bs));
  }
  return out;
}

// ---------------------------------------------------------------------------

struct RedisAffinityStore::Core : std::enable_shared_from_this<Core> {
  struct Op {
    enum class Kind : uint8_t {
      kPut,      // a new or changed entry (or the same again): put()
      kRefresh,  // a hit whose TTL extension is due: refresh()
      kErase,
    };
    Kind kind = Kind::kPut;
    std::string key;
    ServerId server = 0;
    Duration ttl{0};
    TimePoint now{};
  };
  // What the client thread knows of one key (the local copy itself holds no
  // keys: MemoryAffinityStore keeps fingerprints only).
  struct Entry {
    int64_t expires = 0;  // local expiry, steady ns (kNoExpiry: none)
    int64_t written = 0;  // expiry Redis has as far as we know (0: unknown)
    uint64_t seq = 0;     // when last touched (Core::seq)
    ServerId server = 0;
    bool dirty = false;    // a write is queued in `pending`
    bool change = false;   // ... and it changes the server (not a refresh)
    bool deleted = false;  // tombstone: the queued write deletes
  };
  struct Names {
    std::vector<std::string> names;
    std::unordered_map<std::string, ServerId, StringHash, std::equal_to<>> ids;
    std::optional<ServerId> find(std::string_view name) const {
      auto it = ids.find(name);
      return it == ids.end() ? std::nullopt : std::optional<ServerId>(it->second);
    }
  };

  Core(RedisClient& c, std::vector<BackendServers> servers, Options o, const Clock& clk,
       std::function<void()> err)
      : client(c),
        opt(std::move(o)),
        clock(clk),
        on_error(std::move(err)),
        sealer(opt.key_secret),
        local(opt.capacity),
        channel(opt.key_prefix + "affinity"),
        pattern(glob_escape(opt.key_prefix + "a:") + "*"),
        origin(random_origin()),
        marker(opt.key_prefix + "replica:" + origin),
        marker_px(std::to_string(std::max<int64_t>(60000, 5 * opt.check_every.count()))),
        tick_timer(c.io()) {
    for (auto& b : servers) {
      Names& n = backends[b.backend];
      for (size_t i = 0; i < b.servers.size(); ++i) n.ids.emplace(b.servers[i], static_cast<ServerId>(i));
      n.names = std::move(b.servers);
    }
    // Never rehashed while it holds at most `capacity` entries, so refill
    // can walk it bucket by bucket across callbacks.
    index.max_load_factor(1.0f);
    index.reserve(static_cast<size_t>(std::min<uint64_t>(opt.capacity, uint64_t{1} << 26)));
  }

  void start() {
    auto self = shared_from_this();
    client.on_state([self](bool up) { self->on_state(up); });
    client.subscribe(channel, [self](std::string_view payload) { self->on_message(payload); });
    // The tick (sweep, marker, outage count) is the one timer of ours left
    // armed between operations: it ends with the client (none outlives the
    // client's io_context).
    client.on_stop([self] { self->tick_timer.cancel(); });
    asio::post(client.io(), [self] { self->arm_tick(); });
  }

  void log(bool error, const std::string& line) const {
    if (opt.log) opt.log(error, line);
  }

  void count_error() {
    errors.fetch_add(1, std::memory_order_relaxed);
    if (on_error) on_error();
  }

  const Names* names_for(std::string_view key) const {
    auto it = backends.find(backend_of(key));
    return it == backends.end() ? nullptr : &it->second;
  }

  // ----------------------------------------------------------- any thread
  void enqueue(Op&& op) {
    bool wake = false, drop = false;
    {
      std::lock_guard lock(q_mu);
      if (queue.size() >= opt.max_queue) {
        drop = true;
      } else {
        if (op.kind == Op::Kind::kRefresh) refreshes.fetch_add(1, std::memory_order_relaxed);
        queue.push_back(std::move(op));
        wake = !wake_posted;
        wake_posted = true;
        // Not idle until the client thread has taken this in (flush() must
        // not see an empty queue and a stale `idle` while it is applied).
        idle.store(false, std::memory_order_release);
      }
    }
    if (drop) {
      dropped.fetch_add(1, std::memory_order_relaxed);
      count_error();
    }
    if (wake) asio::post(client.io(), [self = shared_from_this()] { self->drain(); });
  }

  // -------------------------------------------------------- client thread
  void drain() {
    {
      std::lock_guard lock(q_mu);
      taken.swap(queue);
      wake_posted = false;
    }
    for (auto& op : taken) apply_local(op);
    taken.clear();
    pump();
  }

  // Room for one more key in the index: expired entries near the sweep
  // cursor go first, then whatever the cursor meets (its queued write, if
  // any, is dropped: refill restores the Redis copy of a live entry).
  void make_room() {
    const int64_t now = to_ns(clock.steady_now());
    const size_t buckets = index.bucket_count();
    std::vector<std::string> victims;
    for (size_t step = 0; step < buckets && index.size() + 1 > opt.capacity; ++step) {
      const size_t b = sweep_bucket++ % buckets;
      victims.clear();
      for (auto it = index.begin(b); it != index.end(b); ++it)
        if (step >= 64 || (!it->second.dirty && it->second.expires <= now)) victims.push_back(it->first);
      for (const auto& k : victims) {
        auto it = index.find(k);
        if (it->second.dirty) {
          dropped.fetch_add(1, std::memory_order_relaxed);
          count_error();
        }
        index.erase(it);
        if (index.size() + 1 <= opt.capacity) break;
      }
    }
  }

  Entry& upsert(const std::string& key, bool& inserted) {
    auto it = index.find(key);
    if (it != index.end()) {
      inserted = false;
      return it->second;
    }
    if (opt.capacity > 0 && index.size() >= opt.capacity) make_room();
    inserted = true;
    return index.emplace(key, Entry{}).first->second;
  }

  void apply_local(Op& op) {
    if (op.kind == Op::Kind::kRefresh) {
      apply_refresh(op);
      return;
    }
    const Names* n = names_for(op.key);
    if (!n) return;
    bool inserted = false;
    if (op.kind == Op::Kind::kErase) {
      local.erase(op.key);
      Entry& e = upsert(op.key, inserted);
      e.deleted = true;
      e.change = true;
      e.seq = ++seq;
      mark_dirty(op.key, e, true);
      return;
    }
    if (op.server >= n->names.size()) return;
    // Applied again here: an announcement from another replica may have
    // landed between the worker's put and this, and the write below makes
    // this one the latest in Redis, so it must be the local one too.
    local.put(op.key, op.server, op.ttl, op.now);
    const int64_t exp = expiry_ns(to_ns(op.now), op.ttl);
    Entry& e = upsert(op.key, inserted);
    const bool change = inserted || e.deleted || e.server != op.server;
    e.server = op.server;
    e.expires = exp;
    e.deleted = false;
    e.seq = ++seq;
    if (change) e.change = true;
    if (change || e.written == 0 || (e.written != kNoExpiry && exp - e.written >= refresh_slack_ns(op.ttl)))
      mark_dirty(op.key, e, true);
  }

  // A hit's TTL extension, already applied to the local copy by the worker
  // (which found it due). Written with the conditional script only, and only
  // while this replica still has the entry naming op.server: an
  // announcement applied since (another replica's change or erase) wins.
  void apply_refresh(const Op& op) {
    auto it = index.find(op.key);
    if (it == index.end()) {
      // Not tracked here (the index made room): tracked again while the
      // local copy still has it.
      const Names* n = names_for(op.key);
      if (!n || op.server >= n->names.size() || local.find(op.key, op.now) != op.server) return;
      bool inserted = false;
      Entry& e = upsert(op.key, inserted);
      e.server = op.server;
      e.expires = expiry_ns(to_ns(op.now), op.ttl);
      e.written = 0;
      e.seq = ++seq;
      mark_dirty(op.key, e, true);
      return;
    }
    Entry& e = it->second;
    if (e.deleted || e.server != op.server) return;
    e.expires = std::max(e.expires, expiry_ns(to_ns(op.now), op.ttl));
    e.seq = ++seq;
    mark_dirty(op.key, e, true);
  }

  void mark_dirty(const std::string& key, Entry& e, bool fresh) {
    if (e.dirty) return;
    if (pending.size() >= opt.max_pending) {
      dropped.fetch_add(1, std::memory_order_relaxed);
      count_error();
      e.written = 0;  // not in Redis as far as we know: refill writes it
      return;
    }
    e.dirty = true;
    pending.push_back(key);
    if (fresh && !up) count_error();  // a change Redis does not get now
  }

  // Pending changes first (they are the newest), then the refill.
  void pump() {
    while (up && inflight < opt.max_inflight && !pending.empty()) {
      std::string key = std::move(pending.front());
      pending.pop_front();
      auto it = index.find(key);
      if (it == index.end() || !it->second.dirty) continue;
      send_write(it);
    }
    if (up && pending.empty() && refill_wanted && !scanning) pump_refill();
    update_idle();
  }

  void update_idle() { idle.store(pending.empty() && inflight == 0, std::memory_order_release); }

  void send_write(std::unordered_map<std::string, Entry>::iterator it) {
    const std::string& key = it->first;
    Entry& e = it->second;
    e.dirty = false;
    const bool change = e.change;
    e.change = false;
    const bool deleted = e.deleted;
    const std::string rkey = encode_key(opt.key_prefix, key);
    std::vector<std::string> argv;
    if (deleted) {
      argv = {"EVAL", kDeleteScript, "1", rkey, channel, "D " + origin + " 0 " + rkey};
    } else {
      const int64_t now = to_ns(clock.steady_now());
      if (e.expires != kNoExpiry && e.expires <= now) {
        index.erase(it);  // expired before it could be written: nothing to share
        return;
      }
      const Names* n = names_for(key);
      if (!n || e.server >= n->names.size()) return;
      const std::string& name = n->names[e.server];
      const std::string px =
          e.expires == kNoExpiry ? "0" : std::to_string(std::max<int64_t>(1, (e.expires - now + 999999) / 1000000));
      argv = {"EVAL", change ? kSetScript : kRefreshScript, "1", rkey, name, px, channel,
              std::string(change ? "C " : "R ") + origin + " " + px + " " + rkey + " " + name};
      e.written = e.expires;
    }
    if (change) ++unechoed[key];
    ++inflight;
    client.command(std::move(argv), [self = shared_from_this(), key, change, deleted](
                                        boost::system::error_code ec, const RedisReply& reply) {
      self->on_written(key, change, deleted, ec, reply);
    });
  }

  void on_written(const std::string& key, bool change, bool deleted, boost::system::error_code ec,
                  const RedisReply& reply) {
    --inflight;
    const bool ok = !ec && !reply.is_error();
    auto it = index.find(key);
    if (ok) {
      written_count.fetch_add(1, std::memory_order_relaxed);
      if (deleted && it != index.end() && it->second.deleted && !it->second.dirty) index.erase(it);
    } else {
      count_error();
      if (change) forget_echo(key);
      if (it != index.end()) {
        it->second.written = 0;
        // Lost with the connection: written again when Redis is back (a
        // refused one, e.g. OOM, is not retried; refill may place it).
        if (ec) {
          if (change || it->second.deleted) it->second.change = true;
          mark_dirty(key, it->second, false);
        }
      }
    }
    pump();
  }

  void forget_echo(const std::string& key) {
    auto it = unechoed.find(key);
    if (it != unechoed.end() && --it->second == 0) unechoed.erase(it);
  }

  // "<C|R|D> <origin> <px> <redis key>[ <server name>]"
  void on_message(std::string_view payload) {
    drain();  // changes made here before this arrived are ordered before it
    std::string_view f[4];
    for (int i = 0; i < 4; ++i) {
      const size_t sp = payload.find(' ');
      if (sp == std::string_view::npos) {
        if (i < 3) return;
        f[i] = payload;
        payload = {};
      } else {
        f[i] = payload.substr(0, sp);
        payload.remove_prefix(sp + 1);
      }
    }
    const std::string_view op = f[0], from = f[1], px_text = f[2], rkey = f[3], name = payload;
    if (op.size() != 1 || std::strchr("CRD", op[0]) == nullptr) return;
    auto key = decode_key(opt.key_prefix, rkey);
    if (!key) return;
    key = sealer.accept(std::move(*key));  // an older replica's raw key: sealed here
    if (!key) {
      ignored.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (from == origin) {
      if (op[0] != 'R') forget_echo(*key);
      return;
    }
    const Names* n = names_for(*key);
    std::optional<ServerId> id;
    if (n) id = op[0] == 'D' ? std::optional<ServerId>(0) : n->find(name);
    if (!id) {
      ignored.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Our own change of this key is on its way and Redis ordered it after
    // this one: it wins everywhere, so this one is skipped here.
    if (unechoed.count(*key)) return;
    auto it = index.find(*key);
    if (it != index.end() && it->second.dirty && it->second.change) return;
    applied.fetch_add(1, std::memory_order_relaxed);
    if (op[0] == 'D') {
      local.erase(*key);
      if (it != index.end()) index.erase(it);
      return;
    }
    int64_t px = 0;
    for (char c : px_text) {
      if (c < '0' || c > '9' || px > (int64_t{1} << 40)) return;
      px = px * 10 + (c - '0');
    }
    const TimePoint now = clock.steady_now();
    local.put(*key, *id, Duration(px), now);
    bool inserted = false;
    Entry& e = upsert(*key, inserted);
    e.server = *id;
    e.expires = expiry_ns(to_ns(now), Duration(px));
    e.written = e.expires;
    e.deleted = false;
    e.seq = ++seq;
  }

  void on_state(bool now_up) {
    ++epoch;
    scanning = false;
    marking = false;
    marked = false;
    if (!now_up) {
      up = false;
      count_error();  // the outage itself, besides each change it holds up
      unechoed.clear();  // echoes of writes in flight are lost with the connection
      update_idle();
      return;
    }
    up = true;
    // After an outage Redis may lack what was written before it (a restart
    // with no persistence): every live entry is written back with NX.
    refill_wanted = ever_up;
    refill_bucket = 0;
    ever_up = true;
    mark(false);  // first, so that a flush from here on is seen by the next check
    drain();  // also sends the changes queued during the outage
    start_scan();
  }

  // --------------------------------------------------------------- marker
  // Sets this replica's marker; with `check`, a marker found gone means
  // Redis was emptied since the last one: refilled as after a restart.
  void mark(bool check) {
    marking = true;
    client.command({"EVAL", kMarkScript, "1", marker, marker_px},
                   [self = shared_from_this(), ep = epoch, check](boost::system::error_code ec,
                                                                  const RedisReply& r) {
                     if (ep != self->epoch) return;  // the next connection marks anew
                     self->marking = false;
                     if (ec || r.type != RedisReply::Type::kInteger) {
                       // Not set: the next one only sets it. A lost
                       // connection is counted as such; a refusal (e.g.
                       // OOM) here.
                       self->marked = false;
                       if (!ec) self->count_error();
                       return;
                     }
                     const bool was_marked = self->marked;
                     self->marked = true;
                     if (check && was_marked && r.integer == 0) self->on_flushed();
                   });
  }

  void on_flushed() {
    flushes.fetch_add(1, std::memory_order_relaxed);
    count_error();
    log(true, "redis: the affinity entries are gone from Redis (FLUSHALL, FLUSHDB or an empty server); "
              "writing back the " + std::to_string(index.size()) + " held here");
    refill_wanted = true;
    refill_bucket = 0;
    pump();
  }

  // ----------------------------------------------------------------- scan
  void start_scan() {
    scanning = true;
    scan_loaded = 0;
    scan_step("0");
  }

  void scan_step(const std::string& cursor) {
    client.command({"SCAN", cursor, "MATCH", pattern, "COUNT", std::to_string(opt.scan_count)},
                   [self = shared_from_this(), ep = epoch](boost::system::error_code ec, const RedisReply& r) {
                     if (ep != self->epoch) return;
                     if (ec || r.type != RedisReply::Type::kArray || r.elements.size() != 2 ||
                         r.elements[1].type != RedisReply::Type::kArray) {
                       self->count_error();
                       self->scan_done(false);  // the next connection scans again
                       return;
                     }
                     std::string next = r.elements[0].str;
                     std::vector<std::string> keys;
                     for (const auto& k : r.elements[1].elements)
                       if (k.type == RedisReply::Type::kString) keys.push_back(k.str);
                     if (keys.empty()) {
                       self->scan_next(next);
                       return;
                     }
                     std::vector<std::string> argv{"EVAL", kLoadScript, std::to_string(keys.size())};
                     argv.insert(argv.end(), keys.begin(), keys.end());
                     const uint64_t seq_at = self->seq;
                     self->client.command(std::move(argv), [self, ep, keys = std::move(keys), next, seq_at](
                                                                boost::system::error_code ec2, const RedisReply& r2) {
                       if (ep != self->epoch) return;
                       if (ec2 || r2.type != RedisReply::Type::kArray || r2.elements.size() != 2 * keys.size()) {
                         self->count_error();
                         self->scan_done(false);
                         return;
                       }
                       self->load(keys, r2, seq_at);
                       self->scan_next(next);
                     });
                   });
  }

  void scan_next(const std::string& cursor) {
    if (cursor == "0" || scan_loaded >= opt.capacity) {
      scan_done(true);
    } else {
      scan_step(cursor);
    }
  }

  void scan_done(bool complete) {
    scanning = false;
    if (complete && !warmed.load()) {
      {
        std::lock_guard lock(w_mu);
        warmed.store(true);
      }
      w_cv.notify_all();
    }
    pump();
  }

  // Entries the local copy lacks, or has with the same server but an
  // earlier expiry, are taken from Redis. Skipped: keys touched since the
  // load was asked for (newer than what it read) and keys with a change of
  // ours not yet written or announced.
  void load(const std::vector<std::string>& keys, const RedisReply& r, uint64_t seq_at) {
    const TimePoint now = clock.steady_now();
    const int64_t now_ns = to_ns(now);
    for (size_t i = 0; i < keys.size(); ++i) {
      const RedisReply& value = r.elements[2 * i];
      const RedisReply& pttl = r.elements[2 * i + 1];
      if (value.type != RedisReply::Type::kString || pttl.type != RedisReply::Type::kInteger) continue;
      if (pttl.integer == -2 || pttl.integer == 0) continue;  // gone meanwhile
      auto key = decode_key(opt.key_prefix, keys[i]);
      if (key) key = sealer.accept(std::move(*key));  // an older version's raw key: sealed here
      const Names* n = key ? names_for(*key) : nullptr;
      const std::optional<ServerId> found = n ? n->find(value.str) : std::nullopt;
      if (!found) {
        ignored.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      const ServerId id = *found;
      const Duration ttl(pttl.integer < 0 ? 0 : pttl.integer);
      const int64_t exp = expiry_ns(now_ns, ttl);
      auto it = index.find(*key);
      if (it != index.end()) {
        Entry& e = it->second;
        if (e.seq > seq_at || e.dirty || unechoed.count(*key)) continue;
        if (!e.deleted && e.server == id) {
          e.written = exp;
          if (exp <= e.expires) continue;
        }
      }
      local.put(*key, id, ttl, now);
      bool inserted = false;
      Entry& e = upsert(*key, inserted);
      e.server = id;
      e.expires = exp;
      e.written = exp;
      e.deleted = false;
      e.seq = ++seq;
      ++scan_loaded;
      loaded.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // --------------------------------------------------------------- refill
  void pump_refill() {
    const int64_t now = to_ns(clock.steady_now());
    const size_t buckets = index.bucket_count();
    while (inflight < opt.max_inflight && refill_bucket < buckets) {
      for (auto it = index.begin(refill_bucket); it != index.end(refill_bucket); ++it) {
        const Entry& e = it->second;
        if (e.dirty || e.deleted || (e.expires != kNoExpiry && e.expires <= now)) continue;
        const Names* n = names_for(it->first);
        if (!n || e.server >= n->names.size()) continue;
        std::vector<std::string> argv{"SET", encode_key(opt.key_prefix, it->first), n->names[e.server]};
        if (e.expires != kNoExpiry) {
          argv.push_back("PX");
          argv.push_back(std::to_string(std::max<int64_t>(1, (e.expires - now) / 1000000)));
        }
        argv.push_back("NX");
        ++inflight;
        client.command(std::move(argv), [self = shared_from_this()](boost::system::error_code ec,
                                                                     const RedisReply& reply) {
          --self->inflight;
          if (ec || reply.is_error()) {
            self->count_error();
          } else if (reply.type == RedisReply::Type::kStatus) {
            self->refilled.fetch_add(1, std::memory_order_relaxed);  // NX: it was missing
          }
          self->pump();
        });
      }
      ++refill_bucket;
    }
    if (refill_bucket >= buckets) refill_wanted = false;
  }

  // ----------------------------------------------------------------- tick
  // Every check_every: the marker is checked (up), or the outage counted
  // (down: from start-up on too, so a Redis never reached shows), and a
  // slice of the index swept.
  void arm_tick() {
    tick_timer.expires_after(opt.check_every);
    tick_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return;
      if (!self->up) {
        self->count_error();
      } else if (!self->marking) {
        self->mark(self->marked);
      }
      self->sweep();
      self->arm_tick();
    });
  }

  // Drops expired index entries, a slice of the buckets a tick (the whole
  // index about once a minute at one tick a second).
  void sweep() {
    const int64_t now = to_ns(clock.steady_now());
    const size_t buckets = index.bucket_count();
    const size_t n = std::max<size_t>(1024, buckets / 60);
    std::vector<std::string> victims;
    for (size_t k = 0; k < n && k < buckets; ++k) {
      const size_t b = sweep_bucket++ % buckets;
      for (auto it = index.begin(b); it != index.end(b); ++it)
        if (!it->second.dirty && it->second.expires <= now) victims.push_back(it->first);
    }
    for (const auto& v : victims) index.erase(v);
  }

  RedisClient& client;
  const Options opt;
  const Clock& clock;
  const std::function<void()> on_error;
  const KeySealer sealer;
  MemoryAffinityStore local;
  const std::string channel;
  const std::string pattern;
  const std::string origin;
  const std::string marker;
  const std::string marker_px;
  std::unordered_map<std::string, Names, StringHash, std::equal_to<>> backends;

  std::mutex q_mu;
  std::vector<Op> queue;  // under q_mu
  bool wake_posted = false;  // under q_mu

  std::atomic<uint64_t> errors{0}, dropped{0}, written_count{0}, refreshes{0}, applied{0}, ignored{0},
      loaded{0}, refilled{0}, flushes{0};
  std::atomic<bool> idle{true};
  std::mutex w_mu;
  std::condition_variable w_cv;
  std::atomic<bool> warmed{false};

  // Client thread only.
  std::vector<Op> taken;
  std::unordered_map<std::string, Entry> index;
  std::deque<std::string> pending;
  std::unordered_map<std::string, uint32_t> unechoed;
  size_t inflight = 0;
  uint64_t seq = 0;
  uint64_t epoch = 0;
  bool up = false;
  bool ever_up = false;
  bool scanning = false;
  uint64_t scan_loaded = 0;
  bool refill_wanted = false;
  size_t refill_bucket = 0;
  bool marking = false;  // a marker command is out
  bool marked = false;   // this connection set the marker (so its absence means a flush)
  size_t sweep_bucket = 0;
  asio::steady_timer tick_timer;
};

// ---------------------------------------------------------------------------

RedisAffinityStore::RedisAffinityStore(RedisClient& client, std::vector<BackendServers> servers, Options options,
                                       const Clock& clock, std::function<void()> on_error)
    : core_(std::make_shared<Core>(client, std::move(servers), std::move(options), clock, std::move(on_error))) {
  core_->start();
}

RedisAffinityStore::~RedisAffinityStore() = default;

namespace {
// The request path's sealed key: one buffer per thread, reused.
std::string& sealed_buffer() {
  thread_local std::string buf;
  return buf;
}
}  // namespace

std::optional<ServerId> RedisAffinityStore::find(std::string_view key, TimePoint now) {
  std::string& sealed = sealed_buffer();
  core_->sealer.seal(key, sealed);
  return core_->local.find(sealed, now);
}

void RedisAffinityStore::put(std::string_view key, ServerId server, Duration ttl, TimePoint now) {
  Core::Op op;
  core_->sealer.seal(key, op.key);
  core_->local.put(op.key, server, ttl, now);
  op.server = server;
  op.ttl = ttl;
  op.now = now;
  core_->enqueue(std::move(op));
}

void RedisAffinityStore::refresh(std::string_view key, ServerId server, Duration ttl, TimePoint now) {
  // Decided here, from the local entry's expiry: a hit within the slack
  // costs what a memory store's refresh does (no copy, no queue, no post).
  std::string& sealed = sealed_buffer();
  core_->sealer.seal(key, sealed);
  if (!core_->local.extend(sealed, server, ttl, now, refresh_slack(ttl))) return;
  Core::Op op;
  op.kind = Core::Op::Kind::kRefresh;
  op.key.assign(sealed);
  op.server = server;
  op.ttl = ttl;
  op.now = now;
  core_->enqueue(std::move(op));
}

void RedisAffinityStore::erase(std::string_view key) {
  Core::Op op;
  op.kind = Core::Op::Kind::kErase;
  core_->sealer.seal(key, op.key);
  core_->local.erase(op.key);
  core_->enqueue(std::move(op));
}

bool RedisAffinityStore::warm_up(std::chrono::milliseconds limit) {
  std::unique_lock lock(core_->w_mu);
  return core_->w_cv.wait_for(lock, limit, [this] { return core_->warmed.load(); });
}

bool RedisAffinityStore::flush(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    bool queued;
    {
      std::lock_guard lock(core_->q_mu);
      queued = !core_->queue.empty() || core_->wake_posted;
    }
    if (!queued && core_->idle.load(std::memory_order_acquire)) return true;
    if (std::chrono::steady_clock::now() >= deadline || !core_->client.connected()) return false;
    std::this_thread::sleep_for(5ms);
  }
}

RedisAffinityStore::Stats RedisAffinityStore::stats() const {
  Stats s;
  s.errors = core_->errors.load(std::memory_order_relaxed);
  s.dropped = core_->dropped.load(std::memory_order_relaxed);
  s.written = core_->written_count.load(std::memory_order_relaxed);
  s.refreshes = core_->refreshes.load(std::memory_order_relaxed);
  s.applied = core_->applied.load(std::memory_order_relaxed);
  s.ignored = core_->ignored.load(std::memory_order_relaxed);
  s.loaded = core_->loaded.load(std::memory_order_relaxed);
  s.refilled = core_->refilled.load(std::memory_order_relaxed);
  s.flushes = core_->flushes.load(std::memory_order_relaxed);
  return s;
}

size_t RedisAffinityStore::local_size() const { return core_->local.size(); }

std::string RedisAffinityStore::redis_key(std::string_view key) const {
  return encode_key(core_->opt.key_prefix, core_->sealer.seal(key));
}

}  // namespace sag::affinity
