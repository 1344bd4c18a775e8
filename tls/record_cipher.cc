#include "tls/record_cipher.h"

#include <openssl/crypto.h>

#include <cstring>

namespace sag::tls {
namespace {

struct Suite {
  std::uint16_t id;
  const char* cipher;
  const char* digest;
  std::uint8_t key_len;
  std::uint8_t hash_len;
};

constexpr Suite kSuites[] = {
    {0x1301, "AES-128-GCM", "SHA256", 16, 32},
    {0x1302, "AES-256-GCM", "SHA384", 32, 48},
    {0x1303, "ChaCha20-Poly1305", "SHA256", 32, 32},
};

const Suite* find_suite(std::uint16_t id) {
  for (const Suite& s : kSuites)
    if (s.id == id) return &s;
  return nullptr;
}

// Fetched once per process: an implicit fetch on every init costs more than
// the key schedule itself in OpenSSL 3.
const EVP_CIPHER* cipher_for(const Suite& s) {
  static EVP_CIPHER* const fetched[] = {
      EVP_CIPHER_fetch(nullptr, kSuites[0].cipher, nullptr),
      EVP_CIPHER_fetch(nullptr, kSuites[1].cipher, nullptr),
      EVP_CIPHER_fetch(nullptr, kSuites[2].cipher, nullptr),
  };
  return fetched[&s - kSuites];
}

// HMAC by its definition (RFC 2104) over digests fetched once and a
// per-thread digest context. OpenSSL 3's EVP_MAC costs about 19,000
// instructions an expansion even with its digest set (three digest contexts
// re-initialized per key), and each handshake needs four; this costs about
// a third of that.
bool hmac(const Suite& s, const unsigned char* key, std::size_t key_len, const unsigned char* msg,
          std::size_t n, unsigned char* out) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* const sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context t;
  const EVP_MD* md = s.hash_len == 48 ? sha384 : sha256;
  if (md == nullptr || t.ctx == nullptr) return false;
  const std::size_t block = static_cast<std::size_t>(EVP_MD_get_block_size(md));
  unsigned char pad[128];
  if (key_len > block || block > sizeof pad) return false;  // secrets are one hash long
  std::memset(pad, 0x36, block);
  for (std::size_t i = 0; i < key_len; ++i) pad[i] ^= key[i];
  unsigned char inner[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  bool ok = EVP_DigestInit_ex2(t.ctx, md, nullptr) == 1 && EVP_DigestUpdate(t.ctx, pad, block) == 1 &&
            EVP_DigestUpdate(t.ctx, msg, n) == 1 && EVP_DigestFinal_ex(t.ctx, inner, &len) == 1;
  for (std::size_t i = 0; i < block; ++i) pad[i] ^= 0x36 ^ 0x5c;
  ok = ok && EVP_DigestInit_ex2(t.ctx, md, nullptr) == 1 && EVP_DigestUpdate(t.ctx, pad, block) == 1 &&
       EVP_DigestUpdate(t.ctx, inner, len) == 1 && EVP_DigestFinal_ex(t.ctx, out, &len) == 1;
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(inner, sizeof inner);
  return ok;
}

// HKDF-Expand-Label(secret, label, "", out_len) for out_len <= the hash
// length: a single HMAC block, T(1) = HMAC(secret, HkdfLabel || 0x01).
bool expand_label(const Suite& s, const unsigned char* secret, std::size_t secret_len,
                  const char* label, unsigned char* out, std::size_t out_len) {
  unsigned char info[2 + 1 + 6 + 32 + 1 + 1];
  const std::size_t label_len = std::strlen(label);
  if (label_len > 32 || out_len > s.hash_len) return false;
  std::size_t n = 0;
  info[n++] = static_cast<unsigned char>(out_len >> 8);
  info[n++] = static_cast<unsigned char>(out_len);
  info[n++] = static_cast<unsigned char>(6 + label_len);
  std::memcpy(info + n, "tls13 ", 6);
  n += 6;
  std::memcpy(info + n, label, label_len);
  n += label_len;
  info[n++] = 0;  // empty context
  info[n++] = 1;  // HKDF-Expand's block counter
  unsigned char block[EVP_MAX_MD_SIZE];
  const bool ok = hmac(s, secret, secret_len, info, n, block);
  if (ok) std::memcpy(out, block, out_len);
  OPENSSL_cleanse(block, sizeof block);
  return ok;
}

}  // namespace

RecordCipher::~RecordCipher() {
  EVP_CIPHER_CTX_free(ctx_);
  OPENSSL_cleanse(secret_, sizeof secret_);
}

bool RecordCipher::supports(std::uint16_t suite) noexcept {
  const Suite* s = find_suite(suite);
  return s != nullptr && cipher_for(*s) != nullptr;
}

bool RecordCipher::init(std::uint16_t suite, const unsigned char* secret, std::size_t len,
                        bool encrypt, std::uint64_t next_seq) {
  const Suite* s = find_suite(suite);
  if (s == nullptr || len != s->hash_len) return false;
  suite_ = suite;
  encrypt_ = encrypt;
  secret_len_ = static_cast<std::uint8_t>(len);
  std::memcpy(secret_, secret, len);
  if (!derive_and_key()) return false;
  seq_ = next_seq;
  return true;
}

bool RecordCipher::next_key() {
  const Suite* s = find_suite(suite_);
  if (s == nullptr) return false;
  unsigned char next[kMaxSecret];
  if (!expand_label(*s, secret_, secret_len_, "traffic upd", next, secret_len_)) return false;
  std::memcpy(secret_, next, secret_len_);
  OPENSSL_cleanse(next, sizeof next);
  seq_ = 0;
  return derive_and_key();
}

bool RecordCipher::derive_and_key() {
  const Suite* s = find_suite(suite_);
  const EVP_CIPHER* cipher = s != nullptr ? cipher_for(*s) : nullptr;
  if (cipher == nullptr) return false;
  unsigned char key[32];
  bool ok = expand_label(*s, secret_, secret_len_, "key", key, s->key_len) &&
            expand_label(*s, secret_, secret_len_, "iv", iv_, sizeof iv_);
  if (ok && ctx_ == nullptr) ok = (ctx_ = EVP_CIPHER_CTX_new()) != nullptr;
  ok = ok && EVP_CipherInit_ex2(ctx_, cipher, key, nullptr, encrypt_ ? 1 : 0, nullptr) == 1;
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

// The per-record nonce: the IV with the sequence number, big-endian, XORed
// into its last eight bytes (RFC 8446 section 5.3).
bool RecordCipher::set_nonce() {
  unsigned char nonce[12];
  std::memcpy(nonce, iv_, sizeof nonce);
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<unsigned char>(seq_ >> (8 * i));
  return EVP_CipherInit_ex2(ctx_, nullptr, nullptr, nonce, -1, nullptr) == 1;
}

std::size_t RecordCipher::seal(std::uint8_t type, const void* plain, std::size_t n,
                               unsigned char* out) {
  if (ctx_ == nullptr || n > kMaxPlain) return 0;
  const std::size_t body = n + 1 + kTag;
  out[0] = kAppData;  // the outer type of every protected record
  out[1] = 0x03;
  out[2] = 0x03;
  out[3] = static_cast<unsigned char>(body >> 8);
  out[4] = static_cast<unsigned char>(body);
  unsigned char* c = out + kHeader;
  int len = 0;
  bool ok = set_nonce() && EVP_EncryptUpdate(ctx_, nullptr, &len, out, kHeader) == 1;
  if (ok && n != 0) {
    ok = EVP_EncryptUpdate(ctx_, c, &len, static_cast<const unsigned char*>(plain),
                           static_cast<int>(n)) == 1 && static_cast<std::size_t>(len) == n;
  }
  ok = ok && EVP_EncryptUpdate(ctx_, c + n, &len, &type, 1) == 1 && len == 1 &&
       EVP_EncryptFinal_ex(ctx_, c + n + 1, &len) == 1 && len == 0 &&
       EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, kTag, c + n + 1) == 1;
  if (!ok) return 0;
  ++seq_;
  return kHeader + body;
}

bool RecordCipher::open(const unsigned char* header, unsigned char* in, std::size_t body,
                        unsigned char* out, std::uint8_t& type, std::size_t& size) {
  if (ctx_ == nullptr || body <= kTag || body > kMaxBody) return false;
  const std::size_t clen = body - kTag;
  int len = 0;
  bool ok = set_nonce() && EVP_DecryptUpdate(ctx_, nullptr, &len, header, kHeader) == 1 &&
            EVP_DecryptUpdate(ctx_, out, &len, in, static_cast<int>(clen)) == 1 &&
            static_cast<std::size_t>(len) == clen &&
            EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, kTag, in + clen) == 1 &&
            EVP_DecryptFinal_ex(ctx_, out + clen, &len) == 1;
  if (!ok) return false;
  ++seq_;
  // The content type is the last non-zero byte; zeros after it are padding.
  std::size_t i = clen;
  while (i != 0 && out[i - 1] == 0) --i;
  if (i == 0) return false;  // all padding: RFC 8446 says unexpected_message
  type = out[i - 1];
  size = i - 1;
  return true;
}

}  // namespace sag::tls
