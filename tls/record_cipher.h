// RecordCipher: one direction of TLS 1.3 record protection (RFC 8446
// sections 5.2, 5.3 and 7.3), for the three AEAD suites every TLS 1.3 peer
// speaks: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and
// TLS_CHACHA20_POLY1305_SHA256.
//
// Why it exists: after a server handshake, OpenSSL's SSL object holds about
// 13 KiB per connection for as long as the connection lives, though all a
// TLS 1.3 connection needs from then on is a key, an IV and a sequence
// number each way (KeyUpdate aside). TlsSocketStream keeps OpenSSL for the
// handshake and hands the connection to a pair of these afterwards.
//
// The AEAD itself is OpenSSL's: its provider's functions, called directly
// rather than through EVP (record_cipher.cc says why). This class only
// derives the key and IV from a traffic secret, builds each record's nonce
// and additional data, and adds or strips the inner content type.
//
// Contract
// - Thread: none of its own; one connection's strand uses it.
// - seal/open use the next sequence number and advance it on success; a
//   failed open leaves the cipher unusable (the connection must end: a
//   record that fails authentication is fatal in TLS 1.3).
// - Buffers: seal writes header + ciphertext + tag into `out` (room for
//   sealed_size(n)); open decrypts into `out`, which may be the record's
//   own body (in place) or another buffer of at least body - kTag bytes.
#pragma once

#include <cstddef>
#include <cstdint>


namespace sag::tls {

// An AEAD's functions in the provider that implements it (record_cipher.cc).
struct Aead;

class RecordCipher {
 public:
  static constexpr std::size_t kHeader = 5;
  static constexpr std::size_t kTag = 16;
  static constexpr std::size_t kMaxPlain = 16384;              // 2^14
  static constexpr std::size_t kMaxBody = kMaxPlain + 256;     // ciphertext limit
  static constexpr std::size_t kMaxSecret = 48;                // SHA-384
  static constexpr std::uint8_t kAppData = 23, kAlert = 21, kHandshake = 22;

  RecordCipher() = default;
  ~RecordCipher();
  RecordCipher(const RecordCipher&) = delete;
  RecordCipher& operator=(const RecordCipher&) = delete;

  // The suite's IANA id (0x1301, 0x1302, 0x1303) is supported.
  static bool supports(std::uint16_t suite) noexcept;

  // Keys this direction from a traffic secret (its length is the suite's
  // hash length). `next_seq`: records already protected under that secret.
  // Returns false when the suite is unsupported or OpenSSL fails.
  bool init(std::uint16_t suite, const unsigned char* secret, std::size_t len, bool encrypt,
            std::uint64_t next_seq = 0);

  // KeyUpdate: the next traffic secret (RFC 8446 section 7.2), sequence 0.
  bool next_key();

  static constexpr std::size_t sealed_size(std::size_t n) { return kHeader + n + 1 + kTag; }

  // Seals `n` (<= kMaxPlain) bytes of `type` into one record at `out`.
  // Returns the record's size, or 0 when OpenSSL fails.
  std::size_t seal(std::uint8_t type, const void* plain, std::size_t n, unsigned char* out);

  // Opens the record whose 5-byte header is at `header` and whose body
  // (`body` bytes, kTag < body <= kMaxBody) is at `in`. On success returns
  // true with the inner type and content length (padding stripped) and the
  // content at `out`; a record of nothing but padding opens with type 0 (no
  // content type, which RFC 8446 section 5.4 answers with
  // unexpected_message). False: authentication failed.
  bool open(const unsigned char* header, unsigned char* in, std::size_t body, unsigned char* out,
            std::uint8_t& type, std::size_t& size);

 private:
  bool derive_and_key();
  bool set_nonce();

  const Aead* aead_ = nullptr;
  void* ctx_ = nullptr;  // the provider's context, from aead_->newctx
  std::uint64_t seq_ = 0;
  std::uint16_t suite_ = 0;
  std::uint8_t secret_len_ = 0;
  bool encrypt_ = false;
  unsigned char iv_[12] = {};
  unsigned char secret_[kMaxSecret] = {};
};

}  // namespace sag::tls
