#include "tls/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace sag::tls {
namespace {

// Fetched once: the implicit fetch behind EVP_aes_256_cbc() would search the
// provider store on every handshake. Never freed (process lifetime).
const EVP_CIPHER* ticket_cipher() {
  static const EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher;
}

void free_holder(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                 void* /*argp*/) {
  delete static_cast<std::shared_ptr<TicketKeys>*>(ptr);
}

// Our own ex_data slot: the SSL_CTX's app data belongs to asio::ssl::context.
// The slot holds a heap std::shared_ptr<TicketKeys>, freed with the SSL_CTX.
int ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_holder);
  return index;
}

bool set_mac_key(EVP_MAC_CTX* mac, const TicketKey& key) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key.hmac.data()),
                                        key.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end(),
  };
  return EVP_MAC_CTX_set_params(mac, params) == 1;
}

int64_t to_ns(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::optional<TicketKey> TicketKey::generate() {
  TicketKey k;
  if (RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) != 1 ||
      RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) != 1 ||
      RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) != 1) {
    return std::nullopt;
  }
  return k;
}

std::optional<TicketKey> TicketKey::parse(std::string_view bytes) {
  if (bytes.size() != kBytes) return std::nullopt;
  TicketKey k;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::memcpy(k.name.data(), p, kNameBytes);
  std::memcpy(k.aes.data(), p + kNameBytes, kAesBytes);
  std::memcpy(k.hmac.data(), p + kNameBytes + kAesBytes, kHmacBytes);
  return k;
}

std::string TicketKey::serialize() const {
  std::string out;
  out.reserve(kBytes);
  out.append(reinterpret_cast<const char*>(name.data()), name.size());
  out.append(reinterpret_cast<const char*>(aes.data()), aes.size());
  out.append(reinterpret_cast<const char*>(hmac.data()), hmac.size());
  return out;
}

TicketKeys::TicketKeys(std::chrono::seconds local_rotation, Clock clock)
    : local_rotation_(local_rotation), clock_(std::move(clock)) {
  auto first = TicketKey::generate();
  // Without a key of our own, tickets could not be issued at all; the
  // CSPRNG failing at start-up is not something to run on.
  if (!first) std::abort();
  set(*first);
}

std::chrono::steady_clock::time_point TicketKeys::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void TicketKeys::set(const TicketKey& current, std::span<const TicketKey> decrypt_only) {
  auto next = std::make_shared<KeySet>();
  next->keys.push_back(current);
  for (const auto& k : decrypt_only) {
    if (std::find(next->keys.begin(), next->keys.end(), k) == next->keys.end()) next->keys.push_back(k);
  }
  made_at_ns_.store(to_ns(now()), std::memory_order_relaxed);
  keys_.store(std::move(next), std::memory_order_release);
}

void TicketKeys::rotate() {
  auto fresh = TicketKey::generate();
  if (!fresh) return;  // keep the current key rather than issue none
  auto old = snapshot();
  TicketKey previous = old->keys.front();
  set(*fresh, std::span<const TicketKey>(&previous, 1));
}

void TicketKeys::rotate_if_due() {
  if (local_rotation_.count() <= 0) return;
  const int64_t made = made_at_ns_.load(std::memory_order_relaxed);
  const int64_t now_ns = to_ns(now());
  const int64_t period = std::chrono::duration_cast<std::chrono::nanoseconds>(local_rotation_).count();
  if (now_ns - made < period) return;
  // One thread wins the period; the others keep using the current snapshot.
  int64_t expected = made;
  if (!made_at_ns_.compare_exchange_strong(expected, now_ns, std::memory_order_relaxed)) return;
  if (now_ns - made < 2 * period) {
    rotate();
  } else if (auto fresh = TicketKey::generate()) {
    // Two periods or more without a handshake: the old key would have been
    // dropped by the second rotation, so it no longer decrypts.
    set(*fresh);
  }
}

int TicketKeys::on_ticket(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                          EVP_MAC_CTX* mac, int encrypt) {
  const auto* holder =
      static_cast<const std::shared_ptr<TicketKeys>*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index()));
  const EVP_CIPHER* aes = ticket_cipher();
  if (holder == nullptr || *holder == nullptr || aes == nullptr) return encrypt ? -1 : 0;
  TicketKeys& self = **holder;
  self.rotate_if_due();
  const auto set = self.snapshot();

  if (encrypt) {
    const TicketKey& k = set->keys.front();
    const int iv_len = EVP_CIPHER_get_iv_length(aes);
    // 0: no ticket this time (OpenSSL then sends an empty TLS 1.2 ticket or
    // no TLS 1.3 one), not -1, which fails the handshake.
    if (RAND_bytes(iv, iv_len) != 1) return 0;
    std::memcpy(key_name, k.name.data(), k.name.size());
    if (EVP_EncryptInit_ex(cipher, aes, nullptr, k.aes.data(), iv) != 1) return -1;
    return set_mac_key(mac, k) ? 1 : -1;
  }
  for (size_t i = 0; i < set->keys.size(); ++i) {
    const TicketKey& k = set->keys[i];
    if (std::memcmp(key_name, k.name.data(), k.name.size()) != 0) continue;
    if (EVP_DecryptInit_ex(cipher, aes, nullptr, k.aes.data(), iv) != 1 || !set_mac_key(mac, k)) return -1;
    // Not the current key: accept, and have OpenSSL issue a fresh ticket.
    return i == 0 ? 1 : 2;
  }
  return 0;  // unknown key (rotated out, or another cluster's): full handshake
}

bool TicketKeys::install(SSL_CTX* ctx, std::shared_ptr<TicketKeys> keys) {
  const int index = ex_index();
  if (index < 0) return false;
  auto* holder = new std::shared_ptr<TicketKeys>(std::move(keys));
  auto* old = static_cast<std::shared_ptr<TicketKeys>*>(SSL_CTX_get_ex_data(ctx, index));
  if (SSL_CTX_set_ex_data(ctx, index, holder) != 1) {
    delete holder;
    return false;
  }
  delete old;
  return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket) == 1;
}

}  // namespace sag::tls
