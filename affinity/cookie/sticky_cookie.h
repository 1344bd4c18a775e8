// The gateway's persistence cookie for one backend (docs/behaviour.md#persistence): derives each
// server's opaque id, decodes a client's value to a server, and formats the
// Set-Cookie line. Built once at config load; immutable and shared by all
// workers afterwards.
//
// Value format. Every character is base64url (A-Z a-z 0-9 - _) or '.', so a
// value is always valid RFC 6265 cookie-octets (no quotes, commas,
// semicolons, spaces or backslashes) and needs no quoting. Three shapes,
// chosen by the config alone (a value of another shape is kInvalid):
//
//   ID                            no max_idle / max_life (secret or not)
//   ID.LLLLLL.CCCCCC              max_idle and/or max_life, no secret
//   ID.LLLLLL.CCCCCC.MMMMMMMMMMMMMMMMMMMMMM
//                                 max_idle and/or max_life, with a secret
//
// - ID (12 chars): the server id, base64url of the first 9 bytes of
//   SHA-256 (no secret) or HMAC-SHA256 keyed by a secret over
//   "sag-cookie-id-v1\0<backend>\0<server>" (derive_id). Replicas with the
//   same config (in any server order) therefore agree on it. With a secret
//   the id is itself a MAC under that secret, so an undated value needs no
//   separate MAC: a bare ID is unforgeable without the secret, and the id
//   tells which secret issued it.
// - LLLLLL, CCCCCC (6 chars each): the last-seen and creation dates, Unix
//   seconds as 36-bit big-endian numbers in fixed-width base64url (up to the
//   year 4147; out-of-range `now` is clamped when encoding).
// - MMMM (22 chars): the first 128 bits of HMAC-SHA256, keyed by the secret
//   that derived ID, over every byte before ".MMMM" ("ID.LLLLLL.CCCCCC"),
//   base64url without padding (the last char's 2 low bits are zero; only
//   the canonical encoding verifies). Compared in constant time.
//
// Secrets (config.secrets, from secret_file): [0] signs and derives the id
// written to clients; every listed secret verifies (rotation). A value
// issued under a non-first secret decodes kValid with refresh = true so it
// gets re-issued under [0]. A secret that is no longer listed verifies
// nothing (its ids are unknown).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/gateway_config.h"

namespace sag::affinity {

class Server;

enum class CookieStatus : uint8_t {
  kValid,    // names a server of this backend
  kInvalid,  // malformed, unknown id, or failed verification
  kExpired,  // well-formed and verified but past max_idle / max_life
};

struct CookieLookup {
  CookieStatus status = CookieStatus::kInvalid;
  Server* server = nullptr;  // set when kValid
  // kValid but the value should be set again: its last-seen date is due for
  // a refresh, or it was issued under a non-first (older) secret.
  bool refresh = false;
  // The decoded dates (Unix seconds); set only when kValid and the config
  // has max_idle/max_life. Pass `created` back to append_set_cookie /
  // value_for when re-issuing this cookie so max_life keeps counting from
  // the original creation.
  std::optional<int64_t> created;
  std::optional<int64_t> last_seen;
};

class StickyCookie {
 public:
  // Accepted skew between replicas' clocks: a last-seen date up to this far
  // after `now` still verifies; further in the future is kInvalid.
  static constexpr int64_t kMaxFutureSkewSeconds = 60;
  // Refresh the last-seen date at most this often, even with a long max_idle.
  static constexpr int64_t kMaxRefreshIntervalSeconds = 60;

  StickyCookie(std::string_view backend_name, const config::CookieConfig& config,
               std::span<Server* const> servers);
  ~StickyCookie();
  StickyCookie(const StickyCookie&) = delete;
  StickyCookie& operator=(const StickyCookie&) = delete;

  // The id a server gets; `secret` may be empty.
  static std::string derive_id(std::string_view backend, std::string_view server,
                               std::string_view secret);

  const std::string& name() const { return name_; }
  const config::CookieConfig& config() const { return config_; }
  // Whether values carry dates (max_idle or max_life is non-zero).
  bool dated() const { return dated_; }
  // How long a value's last-seen date stays current: a value issued this
  // long ago decodes with refresh = true (0: never, without max_idle).
  int64_t refresh_after_seconds() const { return refresh_after_s_; }

  // Never allocates, never fails on any bytes; `now` is Unix seconds.
  //   kValid:   well-formed, known id, MAC verified (when dated with a
  //             secret), created <= last_seen <= now + kMaxFutureSkewSeconds,
  //             and not expired. refresh when max_idle > 0 and
  //             now - last_seen >= min(ceil(max_idle / 4), 60 s), or when
  //             issued under a non-first secret.
  //   kExpired: as kValid, but now - last_seen > max_idle (max_idle > 0) or
  //             now - created > max_life (max_life > 0).
  //   kInvalid: anything else.
  CookieLookup decode(std::string_view value, int64_t now) const;

  // The cookie value for `server`, issued at `now`. With dates, last-seen is
  // `now` and the creation date is `created` when given (a cookie being
  // re-issued: pass CookieLookup::created so max_life is never extended),
  // otherwise `now` (a fresh cookie). `created` is clamped to at most `now`.
  // Undated configs ignore both. Signed with secrets[0] when there are
  // secrets. Usable as is for mode rewrite (and as the ID in mode prefix).
  std::string value_for(const Server& server, int64_t now,
                        std::optional<int64_t> created = std::nullopt) const;
  void append_value(const Server& server, int64_t now, std::optional<int64_t> created,
                    std::string& out) const;

  // Appends a complete Set-Cookie field value for `server` to `out`:
  // "NAME=" + value_for(server, now, created) + attributes. `tls` is whether
  // the client connection is TLS (Secure: auto).
  void append_set_cookie(const Server& server, int64_t now, bool tls, std::string& out,
                         std::optional<int64_t> created = std::nullopt) const;

 private:
  struct IdEntry {
    Server* server;
    uint32_t secret;  // index into config_.secrets that derived the id (0 without secrets)
  };
  // The ids made at config load, in an open-addressed table of twice their
  // number (rounded up to a power of two), looked up on every request with
  // a cookie: an id is 12 characters, compared as one 8-byte and one 4-byte
  // word, and slotted by a multiplicative hash of its first eight bytes. A
  // client's value can only miss: it cannot add entries or lengthen a probe
  // beyond the ids' own run.
  struct IdSlot {
    uint64_t head = 0;  // id bytes 0..7
    uint32_t tail = 0;  // id bytes 8..11
    IdEntry entry{nullptr, 0};  // server null: an empty slot
  };
  void add_id(std::string_view id, IdEntry entry);
  const IdEntry* find_id(const char* id) const;  // 12 bytes
  struct MacKey;  // precomputed HMAC-SHA256 inner/outer states for one secret

  // The 22-char MAC of `msg` under secret `key` into `out`.
  void mac(uint32_t key, std::string_view msg, char* out) const;

  const config::CookieConfig config_;
  const std::string name_;
  const bool dated_;
  const int64_t max_idle_ms_;
  const int64_t max_life_ms_;
  int64_t refresh_after_s_ = 0;    // min(ceil(max_idle / 4), 60 s); 0 = never
  std::string attributes_plain_;   // "; Path=/; HttpOnly; SameSite=Lax"
  std::string attributes_secure_;  // the same with "; Secure"
  std::vector<IdSlot> id_slots_;
  unsigned id_shift_ = 64;  // 64 - log2(id_slots_.size())
  std::vector<MacKey> mac_keys_;   // one per config_.secrets entry
};

}  // namespace sag::affinity
