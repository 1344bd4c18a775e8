#include "affinity/store/redis_key_codec.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <stdexcept>

#include "affinity/store/memory_affinity_store.h"
#include "config/base/hex.h"

namespace sag::affinity {

namespace {

// Keys are sealed under HMAC-SHA256(secret, kKeyLabel)[0..16); without a
// secret, under this one.
constexpr std::string_view kKeyLabel = "sag affinity-store key v1";
constexpr std::string_view kBuiltInSecret = "sag affinity-store: no key secret configured";

bool plain_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && std::strchr("._~!$&'()+,;=@/-", c) != nullptr);
}

void encode_part(std::string& out, std::string_view part) {
  for (unsigned char c : part) {
    if (plain_byte(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      base::append_hex_byte(out, c, base::HexCase::kUpper);
    }
  }
}

bool decode_part(std::string& out, std::string_view part) {
  for (size_t i = 0; i < part.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(part[i]);
    if (c == '%') {
      if (i + 2 >= part.size()) return false;
      const int hi = base::hex_value(part[i + 1]), lo = base::hex_value(part[i + 2]);
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

// Where the kind is in "<backend>\0<kind>\0<value>", npos when the key is
// not of that form.
size_t kind_at(std::string_view key) {
  const size_t nul = key.find('\0');
  if (nul == std::string_view::npos || key.size() < nul + 3 || key[nul + 2] != '\0') return std::string_view::npos;
  return nul + 1;
}

bool lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

RedisKeyCodec::RedisKeyCodec(std::string_view secret) {
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

void RedisKeyCodec::seal(std::string_view key, std::string& out) const {
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

std::optional<std::string> RedisKeyCodec::accept(std::string key) const {
  const size_t k = kind_at(key);
  if (k == std::string_view::npos) return std::nullopt;
  const char kind = key[k];
  if (kind >= 'A' && kind <= 'Z') return seal(key);
  if (kind < 'a' || kind > 'z' || key.size() != k + 2 + kDigestChars) return std::nullopt;
  for (size_t i = k + 2; i < key.size(); ++i)
    if (!lower_hex(key[i])) return std::nullopt;
  return key;
}

std::string RedisKeyCodec::encode(std::string_view prefix, std::string_view key) {
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

std::optional<std::string> RedisKeyCodec::decode(std::string_view prefix, std::string_view redis_key) {
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

std::string RedisKeyCodec::scan_pattern(std::string_view prefix) {
  return glob_escape(std::string(prefix) + "a:") + "*";
}

}  // namespace sag::affinity
