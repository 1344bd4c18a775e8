// TLS session ticket keys shared by every listener of the process (and, fed
// from Redis by the gateway, by every replica): one key encrypts new
// tickets, a few more still decrypt, so a ticket issued before a rotation,
// or by another replica, resumes.
//
// Installed on an SSL_CTX through SSL_CTX_set_tlsext_ticket_key_evp_cb: the
// same callback serves TLS 1.2 tickets and TLS 1.3 resumption tickets
// (AES-256-CBC + HMAC-SHA256, OpenSSL's own ticket format). A ticket that
// decrypts under a key other than the current one is accepted and the
// client gets a fresh ticket under the current key.
//
// Thread-safety: the key set is an immutable snapshot behind an atomic
// shared_ptr. Handshakes on any thread read it without a lock; set() and
// rotate() (rare) publish a new snapshot. Every member is thread-safe.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sag::tls {

// One ticket key. The wire form (serialize/parse) is what replicas exchange:
// 80 bytes, name (16) then AES-256 key (32) then HMAC-SHA256 key (32).
struct TicketKey {
  static constexpr size_t kNameBytes = 16;
  static constexpr size_t kAesBytes = 32;
  static constexpr size_t kHmacBytes = 32;
  static constexpr size_t kBytes = kNameBytes + kAesBytes + kHmacBytes;

  std::array<unsigned char, kNameBytes> name{};
  std::array<unsigned char, kAesBytes> aes{};
  std::array<unsigned char, kHmacBytes> hmac{};

  // From OpenSSL's CSPRNG; nullopt only if RAND_bytes fails.
  static std::optional<TicketKey> generate();
  // nullopt unless `bytes` is exactly kBytes long.
  static std::optional<TicketKey> parse(std::string_view bytes);
  std::string serialize() const;
  bool operator==(const TicketKey&) const = default;
};

class TicketKeys {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // An immutable snapshot: keys[0] encrypts, every one decrypts.
  struct KeySet {
    std::vector<TicketKey> keys;
  };

  // Starts with one fresh random key. With `local_rotation` > 0 the set
  // rotates itself (see rotate()) once that long has passed since the
  // current key was made, checked lazily on each ticket operation (no
  // timer); a gateway without Redis uses 12 h. 0: keys change only through
  // set()/rotate(). `clock` (steady_clock::now by default) is for tests.
  explicit TicketKeys(std::chrono::seconds local_rotation = std::chrono::seconds(0), Clock clock = {});
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  // Replaces the set: `current` encrypts from now on, `decrypt_only` still
  // decrypt (duplicates of `current` are dropped). Restarts the local
  // rotation period.
  void set(const TicketKey& current, std::span<const TicketKey> decrypt_only = {});
  // A fresh current key; the old current key still decrypts; older keys are
  // dropped. So a ticket survives one rotation, not two.
  void rotate();

  std::shared_ptr<const KeySet> snapshot() const { return keys_.load(std::memory_order_acquire); }

  // Makes `ctx` encrypt and decrypt tickets with these keys. The SSL_CTX
  // keeps a reference to `keys` (freed with the SSL_CTX), so the ring lives
  // as long as any context that uses it. False (with OpenSSL's error queue
  // set) when the callback cannot be installed.
  static bool install(SSL_CTX* ctx, std::shared_ptr<TicketKeys> keys);

 private:
  static int on_ticket(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                       EVP_MAC_CTX* mac, int encrypt);
  // Applies the local rotation when it is due; called on every ticket
  // operation, lock-free unless a rotation happens.
  void rotate_if_due();
  std::chrono::steady_clock::time_point now() const;

  std::atomic<std::shared_ptr<const KeySet>> keys_;
  const std::chrono::seconds local_rotation_;
  const Clock clock_;
  // steady_clock nanoseconds when the current key was made; the local
  // rotation claims a period by a CAS on it, so one thread rotates.
  std::atomic<int64_t> made_at_ns_{0};
};

}  // namespace sag::tls
