// The low-level SHA256_* calls (deprecated in OpenSSL 3, still supported)
// let decode run HMAC-SHA256 from precomputed keyed states on the stack:
// the EVP/HMAC APIs allocate a context per call.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "affinity/cookie/sticky_cookie.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "affinity/model/server.h"

namespace sag::affinity {
namespace {

constexpr size_t kIdBytes = 9;  // 72 bits: 12 base64url characters
constexpr size_t kIdChars = 12;
constexpr size_t kDateChars = 6;  // 36 bits
constexpr int64_t kMaxDate = (int64_t{1} << 36) - 1;
constexpr size_t kMacBytes = 16;  // 128 bits
constexpr size_t kMacChars = 22;
// "ID.LLLLLL.CCCCCC" and "ID.LLLLLL.CCCCCC.MMMM"
constexpr size_t kDatedChars = kIdChars + 1 + kDateChars + 1 + kDateChars;
constexpr size_t kSignedChars = kDatedChars + 1 + kMacChars;

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> kB64Rev = [] {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kB64[i])] = static_cast<int8_t>(i);
  return t;
}();

// base64url without padding of n bytes into out (4 * ceil(n / 3) chars,
// fewer for a partial last group: 2 chars for 1 byte, 3 for 2). Returns the
// number of chars written.
size_t base64url(const unsigned char* p, size_t n, char* out) {
  size_t o = 0;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out[o++] = kB64[(v >> 18) & 63];
    out[o++] = kB64[(v >> 12) & 63];
    out[o++] = kB64[(v >> 6) & 63];
    out[o++] = kB64[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    out[o++] = kB64[(v >> 18) & 63];
    out[o++] = kB64[(v >> 12) & 63];
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    out[o++] = kB64[(v >> 18) & 63];
    out[o++] = kB64[(v >> 12) & 63];
    out[o++] = kB64[(v >> 6) & 63];
  }
  return o;
}

void encode_date(int64_t t, char* out) {
  const uint64_t v = static_cast<uint64_t>(std::clamp<int64_t>(t, 0, kMaxDate));
  for (size_t i = 0; i < kDateChars; ++i) out[i] = kB64[(v >> (6 * (kDateChars - 1 - i))) & 63];
}

// False on a character outside the alphabet. Every 6-char string is the
// canonical encoding of exactly one 36-bit number.
bool decode_date(const char* p, int64_t& t) {
  // Every digit looked up first and checked once (a bad one is -1, so the
  // OR of all is negative): one branch, not six.
  static_assert(kDateChars == 6);
  auto digit = [p](size_t i) -> int64_t { return kB64Rev[static_cast<unsigned char>(p[i])]; };
  const int64_t d0 = digit(0), d1 = digit(1), d2 = digit(2), d3 = digit(3), d4 = digit(4),
                d5 = digit(5);
  if ((d0 | d1 | d2 | d3 | d4 | d5) < 0) return false;
  t = d0 << 30 | d1 << 24 | d2 << 18 | d3 << 12 | d4 << 6 | d5;
  return true;
}

// a - b in seconds as milliseconds, saturating (b is a decoded date in
// [0, 2^36), `a` any int64).
int64_t elapsed_ms(int64_t a, int64_t b) {
  if (a <= b) return 0;
  const uint64_t d = static_cast<uint64_t>(a) - static_cast<uint64_t>(b);
  if (d > static_cast<uint64_t>(INT64_MAX / 1000)) return INT64_MAX;
  return static_cast<int64_t>(d) * 1000;
}

}  // namespace

struct StickyCookie::MacKey {
  SHA256_CTX inner;  // after absorbing key ^ ipad
  SHA256_CTX outer;  // after absorbing key ^ opad
};

std::string StickyCookie::derive_id(std::string_view backend, std::string_view server,
                                    std::string_view secret) {
  // A domain-separated message so a backend "a\0b" can't collide with "a".
  std::string msg = "sag-cookie-id-v1";
  msg += '\0';
  msg += backend;
  msg += '\0';
  msg += server;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (secret.empty()) {
    SHA256(reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), digest);
  } else {
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), digest, &len);
  }
  char out[kIdChars];
  base64url(digest, kIdBytes, out);  // kIdBytes is a multiple of 3: exactly 12 chars
  return std::string(out, kIdChars);
}

StickyCookie::StickyCookie(std::string_view backend_name, const config::CookieConfig& config,
                           std::span<Server* const> servers)
    : config_(config),
      name_(config.name),
      dated_(config.max_idle.count() > 0 || config.max_life.count() > 0),
      max_idle_ms_(std::max<int64_t>(config.max_idle.count(), 0)),
      max_life_ms_(std::max<int64_t>(config.max_life.count(), 0)) {
  std::string attrs;
  if (!config.path.empty()) attrs += "; Path=" + config.path;
  if (!config.domain.empty()) attrs += "; Domain=" + config.domain;
  if (config.max_age.count() > 0)
    attrs += "; Max-Age=" + std::to_string(config.max_age.count() / 1000);
  if (config.http_only) attrs += "; HttpOnly";
  attrs += "; SameSite=";
  attrs += config::to_string(config.same_site);
  // SameSite=None requires Secure in browsers; the loader rejects secure:false with it.
  // Browsers drop SameSite=None cookies that aren't Secure, so None implies it.
  const bool force_secure = config.secure == config::SecureFlag::kOn ||
                            config.same_site == config::SameSite::kNone;
  const bool never_secure = config.secure == config::SecureFlag::kOff;
  attributes_secure_ = never_secure ? attrs : attrs + "; Secure";
  attributes_plain_ = force_secure ? attrs + "; Secure" : attrs;

  // docs/behaviour.md#persistence: a quarter of max_idle, at most 60 s (rounded up to whole
  // seconds: "has passed").
  if (max_idle_ms_ > 0)
    refresh_after_s_ = std::min<int64_t>((max_idle_ms_ + 3999) / 4000, kMaxRefreshIntervalSeconds);

  const size_t ids = servers.size() * std::max<size_t>(1, config.secrets.size());
  size_t slots = 4;
  while (slots < 2 * ids) slots *= 2;
  id_slots_.resize(slots);
  id_shift_ = 64 - static_cast<unsigned>(std::countr_zero(slots));
  for (Server* s : servers) add_id(s->cookie_id(), IdEntry{s, 0});
  // Older keys still verify (rotation: "the first signs, every one verifies").
  for (size_t k = 1; k < config.secrets.size(); ++k)
    for (Server* s : servers)
      add_id(derive_id(backend_name, s->name(), config.secrets[k]),
             IdEntry{s, static_cast<uint32_t>(k)});

  // HMAC (RFC 2104) with the keyed blocks absorbed once, here.
  mac_keys_.resize(config.secrets.size());
  for (size_t k = 0; k < config.secrets.size(); ++k) {
    const std::string& secret = config.secrets[k];
    unsigned char block[SHA256_CBLOCK] = {};
    if (secret.size() > SHA256_CBLOCK) {
      SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), block);
    } else {
      std::memcpy(block, secret.data(), secret.size());
    }
    unsigned char pad[SHA256_CBLOCK];
    for (size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&mac_keys_[k].inner);
    SHA256_Update(&mac_keys_[k].inner, pad, sizeof pad);
    for (size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&mac_keys_[k].outer);
    SHA256_Update(&mac_keys_[k].outer, pad, sizeof pad);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
  }
}

StickyCookie::~StickyCookie() {
  if (!mac_keys_.empty()) OPENSSL_cleanse(mac_keys_.data(), mac_keys_.size() * sizeof(MacKey));
}

void StickyCookie::mac(uint32_t key, std::string_view msg, char* out) const {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_CTX c = mac_keys_[key].inner;
  SHA256_Update(&c, msg.data(), msg.size());
  SHA256_Final(digest, &c);
  c = mac_keys_[key].outer;
  SHA256_Update(&c, digest, sizeof digest);
  SHA256_Final(digest, &c);
  base64url(digest, kMacBytes, out);
}

namespace {

// Slot of an id's first eight bytes in a table of 2^(64 - shift) slots.
size_t id_slot(uint64_t head, unsigned shift) {
  return static_cast<size_t>((head * 0x9e3779b97f4a7c15ull) >> shift);
}

}  // namespace

// An id of another length can never match a value decode() accepts; a
// repeated id keeps its first entry.
void StickyCookie::add_id(std::string_view id, IdEntry entry) {
  if (id.size() != kIdChars) return;
  if (find_id(id.data()) != nullptr) return;
  IdSlot slot;
  std::memcpy(&slot.head, id.data(), sizeof slot.head);
  std::memcpy(&slot.tail, id.data() + sizeof slot.head, sizeof slot.tail);
  slot.entry = entry;
  const size_t mask = id_slots_.size() - 1;
  size_t i = id_slot(slot.head, id_shift_);
  while (id_slots_[i].entry.server != nullptr) i = (i + 1) & mask;
  id_slots_[i] = slot;
}

const StickyCookie::IdEntry* StickyCookie::find_id(const char* id) const {
  static_assert(kIdChars == sizeof(uint64_t) + sizeof(uint32_t));
  uint64_t head;
  uint32_t tail;
  std::memcpy(&head, id, sizeof head);
  std::memcpy(&tail, id + sizeof head, sizeof tail);
  const size_t mask = id_slots_.size() - 1;
  for (size_t i = id_slot(head, id_shift_);; i = (i + 1) & mask) {
    const IdSlot& slot = id_slots_[i];
    if (slot.entry.server == nullptr) return nullptr;
    if (slot.head == head && slot.tail == tail) return &slot.entry;
  }
}

CookieLookup StickyCookie::decode(std::string_view value, int64_t now) const {
  CookieLookup r;
  const bool signed_value = !mac_keys_.empty();
  const size_t expected = !dated_ ? kIdChars : signed_value ? kSignedChars : kDatedChars;
  if (value.size() != expected) return r;
  const IdEntry* found = find_id(value.data());
  if (found == nullptr) return r;
  const IdEntry entry = *found;
  // Issued under an older key: valid, but re-issue it under the current one.
  const bool resign = entry.secret != 0;
  if (!dated_) {
    r.status = CookieStatus::kValid;
    r.server = entry.server;
    r.refresh = resign;
    return r;
  }

  const char* p = value.data();
  int64_t last_seen = 0;
  int64_t created = 0;
  if (p[kIdChars] != '.' || p[kIdChars + 1 + kDateChars] != '.') return r;
  if (!decode_date(p + kIdChars + 1, last_seen)) return r;
  if (!decode_date(p + kIdChars + 1 + kDateChars + 1, created)) return r;
  if (signed_value) {
    if (p[kDatedChars] != '.') return r;
    char expect[kMacChars];
    mac(entry.secret, value.substr(0, kDatedChars), expect);
    if (CRYPTO_memcmp(expect, p + kDatedChars + 1, kMacChars) != 0) return r;
  }
  // Dates this replica could not have written.
  if (created > last_seen) return r;
  if (now < INT64_MAX - kMaxFutureSkewSeconds && last_seen > now + kMaxFutureSkewSeconds) return r;

  if ((max_idle_ms_ > 0 && elapsed_ms(now, last_seen) > max_idle_ms_) ||
      (max_life_ms_ > 0 && elapsed_ms(now, created) > max_life_ms_)) {
    r.status = CookieStatus::kExpired;
    return r;
  }
  r.status = CookieStatus::kValid;
  r.server = entry.server;
  r.created = created;
  r.last_seen = last_seen;
  r.refresh = resign || (refresh_after_s_ > 0 && now - last_seen >= refresh_after_s_);
  return r;
}

void StickyCookie::append_value(const Server& server, int64_t now, std::optional<int64_t> created,
                                std::string& out) const {
  out += server.cookie_id();
  if (!dated_) return;
  const int64_t c = created ? std::min(*created, now) : now;
  char dates[1 + kDateChars + 1 + kDateChars];  // ".LLLLLL.CCCCCC"
  dates[0] = '.';
  encode_date(now, dates + 1);
  dates[1 + kDateChars] = '.';
  encode_date(c, dates + 1 + kDateChars + 1);
  out.append(dates, sizeof dates);
  if (mac_keys_.empty()) return;
  // The MAC covers exactly the value written so far: "ID.LLLLLL.CCCCCC".
  const size_t value_chars = server.cookie_id().size() + sizeof dates;
  std::string_view signed_part(out.data() + out.size() - value_chars, value_chars);
  char m[kMacChars];
  mac(0, signed_part, m);
  out += '.';
  out.append(m, kMacChars);
}

std::string StickyCookie::value_for(const Server& server, int64_t now,
                                    std::optional<int64_t> created) const {
  std::string out;
  append_value(server, now, created, out);
  return out;
}

void StickyCookie::append_set_cookie(const Server& server, int64_t now, bool tls,
                                     std::string& out, std::optional<int64_t> created) const {
  out += name_;
  out += '=';
  append_value(server, now, created, out);
  out += tls ? attributes_secure_ : attributes_plain_;
}

}  // namespace sag::affinity
