#include "tls/record_cipher.h"

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <strings.h>

#include <cstring>
#include <string_view>

namespace sag::tls {

struct Aead {
  OSSL_FUNC_cipher_newctx_fn* newctx = nullptr;
  OSSL_FUNC_cipher_freectx_fn* freectx = nullptr;
  OSSL_FUNC_cipher_encrypt_init_fn* einit = nullptr;
  OSSL_FUNC_cipher_decrypt_init_fn* dinit = nullptr;
  OSSL_FUNC_cipher_update_fn* update = nullptr;
  OSSL_FUNC_cipher_final_fn* final = nullptr;
  OSSL_FUNC_cipher_get_ctx_params_fn* get_params = nullptr;
  OSSL_FUNC_cipher_set_ctx_params_fn* set_params = nullptr;
  void* provctx = nullptr;
};

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

// Whether `name` is one of the colon-separated `names` (any case).
bool names_include(std::string_view names, std::string_view name) {
  while (!names.empty()) {
    const std::size_t colon = names.find(':');
    const std::string_view one = names.substr(0, colon);
    if (one.size() == name.size() && ::strncasecmp(one.data(), name.data(), one.size()) == 0)
      return true;
    if (colon == std::string_view::npos) break;
    names.remove_prefix(colon + 1);
  }
  return false;
}

// The suite's AEAD as its provider implements it, found once per process
// through OSSL_PROVIDER_query_operation (public, documented as low-level) in
// the provider that EVP_CIPHER_fetch chose. Records go straight to these
// functions: through EVP, each record's nonce and tag cost about 1,400
// instructions of parameter building and look-ups (EVP_CipherInit_ex2 asks
// the provider for the IV length every time, the tag travels through
// EVP_CIPHER_CTX_ctrl), more than sealing a small record itself.
const Aead* aead_for(const Suite& s) {
  static const auto table = [] {
    struct Table {
      Aead aead[std::size(kSuites)];
      bool ok[std::size(kSuites)] = {};
    } t{};
    for (std::size_t i = 0; i < std::size(kSuites); ++i) {
      const EVP_CIPHER* cipher = cipher_for(kSuites[i]);
      const OSSL_PROVIDER* prov = cipher != nullptr ? EVP_CIPHER_get0_provider(cipher) : nullptr;
      if (prov == nullptr) continue;
      int no_cache = 0;
      const OSSL_ALGORITHM* algs = OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_cache);
      for (const OSSL_ALGORITHM* a = algs; a != nullptr && a->algorithm_names != nullptr; ++a) {
        if (!names_include(a->algorithm_names, kSuites[i].cipher)) continue;
        Aead& x = t.aead[i];
        for (const OSSL_DISPATCH* f = a->implementation; f->function_id != 0; ++f) {
          switch (f->function_id) {
            case OSSL_FUNC_CIPHER_NEWCTX: x.newctx = OSSL_FUNC_cipher_newctx(f); break;
            case OSSL_FUNC_CIPHER_FREECTX: x.freectx = OSSL_FUNC_cipher_freectx(f); break;
            case OSSL_FUNC_CIPHER_ENCRYPT_INIT: x.einit = OSSL_FUNC_cipher_encrypt_init(f); break;
            case OSSL_FUNC_CIPHER_DECRYPT_INIT: x.dinit = OSSL_FUNC_cipher_decrypt_init(f); break;
            case OSSL_FUNC_CIPHER_UPDATE: x.update = OSSL_FUNC_cipher_update(f); break;
            case OSSL_FUNC_CIPHER_FINAL: x.final = OSSL_FUNC_cipher_final(f); break;
            case OSSL_FUNC_CIPHER_GET_CTX_PARAMS: x.get_params = OSSL_FUNC_cipher_get_ctx_params(f); break;
            case OSSL_FUNC_CIPHER_SET_CTX_PARAMS: x.set_params = OSSL_FUNC_cipher_set_ctx_params(f); break;
            default: break;
          }
        }
        x.provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
        // A provider that asks not to cache its answer may change it: such
        // a suite is left to OpenSSL's own record layer.
        t.ok[i] = no_cache == 0 && x.newctx && x.freectx && x.einit && x.dinit && x.update &&
                  x.final && x.get_params && x.set_params;
        break;
      }
      if (algs != nullptr) OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
    }
    return t;
  }();
  const std::size_t i = static_cast<std::size_t>(&s - kSuites);
  return table.ok[i] ? &table.aead[i] : nullptr;
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
  if (ctx_ != nullptr) aead_->freectx(ctx_);
  OPENSSL_cleanse(secret_, sizeof secret_);
}

bool RecordCipher::supports(std::uint16_t suite) noexcept {
  const Suite* s = find_suite(suite);
  return s != nullptr && aead_for(*s) != nullptr;
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
  const Aead* aead = s != nullptr ? aead_for(*s) : nullptr;
  if (aead == nullptr) return false;
  unsigned char key[32];
  bool ok = expand_label(*s, secret_, secret_len_, "key", key, s->key_len) &&
            expand_label(*s, secret_, secret_len_, "iv", iv_, sizeof iv_);
  if (ok && ctx_ != nullptr && aead_ != aead) {  // init() again, for another suite
    aead_->freectx(ctx_);
    ctx_ = nullptr;
  }
  if (ok && ctx_ == nullptr) {
    aead_ = aead;
    ok = (ctx_ = aead->newctx(aead->provctx)) != nullptr;
  }
  ok = ok && (encrypt_ ? aead_->einit : aead_->dinit)(ctx_, key, s->key_len, nullptr, 0, nullptr) == 1;
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

// The per-record nonce: the IV with the sequence number, big-endian, XORed
// into its last eight bytes (RFC 8446 section 5.3).
bool RecordCipher::set_nonce() {
  unsigned char nonce[12];
  std::memcpy(nonce, iv_, sizeof nonce);
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<unsigned char>(seq_ >> (8 * i));
  return (encrypt_ ? aead_->einit : aead_->dinit)(ctx_, nullptr, 0, nonce, sizeof nonce, nullptr) == 1;
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
  std::size_t len = 0;
  // The additional data (the header) goes in with no output buffer.
  bool ok = set_nonce() && aead_->update(ctx_, nullptr, &len, kHeader, out, kHeader) == 1;
  if (ok && n != 0) {
    ok = aead_->update(ctx_, c, &len, n, static_cast<const unsigned char*>(plain), n) == 1 &&
         len == n;
  }
  ok = ok && aead_->update(ctx_, c + n, &len, 1, &type, 1) == 1 && len == 1;
  OSSL_PARAM tag[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, c + n + 1, kTag),
      OSSL_PARAM_construct_end()};
  // Final is given no room, as EVP gives it none for these ciphers: it
  // writes nothing (the tag is asked for after it).
  ok = ok && aead_->final(ctx_, c + n + 1, &len, 0) == 1 && len == 0 &&
       aead_->get_params(ctx_, tag) == 1;
  if (!ok) return 0;
  ++seq_;
  return kHeader + body;
}

bool RecordCipher::open(const unsigned char* header, unsigned char* in, std::size_t body,
                        unsigned char* out, std::uint8_t& type, std::size_t& size) {
  if (ctx_ == nullptr || body <= kTag || body > kMaxBody) return false;
  const std::size_t clen = body - kTag;
  std::size_t len = 0;
  const OSSL_PARAM tag[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, in + clen, kTag),
      OSSL_PARAM_construct_end()};
  bool ok = set_nonce() && aead_->update(ctx_, nullptr, &len, kHeader, header, kHeader) == 1 &&
            aead_->update(ctx_, out, &len, clen, in, clen) == 1 && len == clen &&
            aead_->set_params(ctx_, tag) == 1 && aead_->final(ctx_, out + clen, &len, 0) == 1;
  if (!ok) return false;
  ++seq_;
  // The content type is the last non-zero byte; zeros after it are padding.
  std::size_t i = clen;
  while (i != 0 && out[i - 1] == 0) --i;
  if (i == 0) {  // authentic, but all padding: the caller decides (type 0)
    type = 0;
    size = 0;
    return true;
  }
  type = out[i - 1];
  size = i - 1;
  return true;
}

}  // namespace sag::tls
