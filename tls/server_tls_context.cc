#include "tls/server_tls_context.h"

#include "tls/tls_socket_stream.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

namespace sag::tls {
namespace {

// TLS 1.2 is limited to forward-secret AEAD suites (docs/behaviour.md#request-path); TLS 1.3 keeps
// OpenSSL's default suites, which are all AEAD.
// TLS 1.3: AES-128-GCM first, as HAProxy and nginx order it: as sound as
// AES-256 and cheaper per byte (OpenSSL's default order would pick AES-256
// under server preference). ChaCha20 stays for clients without AES-NI.
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";

// Identical on every SSL_CTX: SSL_set_SSL_CTX keeps the session id context
// only when old and new contexts agree, and resumption must work regardless of
// which certificate the SNI picked.
constexpr unsigned char kSessionIdContext[] = "sag";
// OpenSSL's default is 20480; sessions cost ~1-2 KiB each, so stay below that.
constexpr long kSessionCacheSize = 10000;
// RFC 1035: a host name is at most 253 characters (255 octets on the wire).
constexpr size_t kMaxServerName = 255;

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

// Drains OpenSSL's thread-local error queue, returning the most specific
// (last) reason, so no stale error leaks into a later, unrelated call.
std::string take_openssl_error() {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return {};
  const char* reason = ERR_reason_error_string(last);
  if (reason != nullptr) return reason;
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

std::string with_reason(std::string message, const std::string& reason) {
  if (!reason.empty()) message += " (" + reason + ")";
  return message;
}

// Never prompt on the terminal for an encrypted key: a gateway has no tty,
// and a blocked start-up or reload is worse than a clear error.
int refuse_password(char*, int, int, void*) { return -1; }

// Empty when the file can be opened for reading; otherwise why not.
std::string unreadable_reason(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return "is a directory";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::strerror(errno);
  std::fclose(f);
  return {};
}

// Tells "no key in the file" apart from "a key we could not decode".
bool has_private_key_block(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.find("PRIVATE KEY-----") != std::string::npos;
}

std::string file_stem(const std::string& path) { return std::filesystem::path(path).stem().string(); }

void lowercase_ascii(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

// DNS SANs, or the subject CNs when the certificate has no DNS SAN (RFC 6125
// §6.4.4: CN is only consulted in the absence of DNS-IDs). Lowercased.
std::vector<std::string> certificate_names(X509* cert) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      const ASN1_IA5STRING* dns = gn->d.dNSName;
      names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                         static_cast<size_t>(ASN1_STRING_length(dns)));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    const X509_NAME* subject = X509_get_subject_name(cert);
    for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
      const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
      unsigned char* utf8 = nullptr;
      int len = ASN1_STRING_to_UTF8(&utf8, cn);
      if (len > 0) names.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
      OPENSSL_free(utf8);
    }
  }
  for (auto& n : names) {
    lowercase_ascii(n);
    if (!n.empty() && n.back() == '.') n.pop_back();
  }
  // Names with embedded NULs or empty ones can never match a real SNI.
  std::erase_if(names, [](const std::string& n) { return n.empty() || n.find('\0') != std::string::npos; });
  return names;
}

struct CertificateSource {
  std::string name;  // file stem
  std::string cert;  // path as shown in errors
  std::string key;
};

std::string join_path(const std::string& dir, const std::string& file) {
  if (dir.empty() || dir.back() == '/') return dir + file;
  return dir + "/" + file;
}

// Expands `dir` into certificate sources in file-name order (so the default,
// the first, is deterministic). Files with other extensions (README.md, the
// dev-cert script) and hidden files are ignored.
std::vector<CertificateSource> scan_directory(const std::string& dir, std::vector<std::string>& errors) {
  std::vector<CertificateSource> sources;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    errors.push_back(dir + ": cannot open directory: " + ec.message());
    return sources;
  }
  std::map<std::string, std::string> crt, key;  // stem -> file name
  std::vector<std::string> files;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) {
      errors.push_back(dir + ": cannot read directory: " + ec.message());
      return sources;
    }
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;  // follows symlinks
    std::string file = it->path().filename().string();
    if (file.empty() || file[0] == '.') continue;
    std::string ext = it->path().extension().string();
    std::string stem = it->path().stem().string();
    if (ext == ".pem") {
      files.push_back(file);
    } else if (ext == ".crt") {
      files.push_back(file);
      crt.emplace(stem, file);
    } else if (ext == ".key") {
      files.push_back(file);
      key.emplace(stem, file);
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::filesystem::path p(file);
    std::string ext = p.extension().string();
    std::string stem = p.stem().string();
    if (ext == ".pem") {
      std::string path = join_path(dir, file);
      sources.push_back({stem, path, path});
    } else if (ext == ".crt") {
      auto k = key.find(stem);
      if (k == key.end()) {
        errors.push_back(join_path(dir, file) + ": no matching " + stem + ".key");
        continue;
      }
      sources.push_back({stem, join_path(dir, file), join_path(dir, k->second)});
    } else if (!crt.contains(stem)) {  // .key
      errors.push_back(join_path(dir, file) + ": no matching " + stem + ".crt");
    }
  }
  if (sources.empty() && errors.empty()) {
    errors.push_back(dir + ": no certificate found (*.pem or NAME.crt + NAME.key)");
  }
  return sources;
}

}  // namespace

struct ServerTlsContext::Impl {
  struct Certificate {
    std::string name;
    SslCtxPtr ctx;
  };
  // Index 0 is the default. Owns one reference to each SSL_CTX; the asio
  // context owns a second, separate reference to certificates[0].ctx.
  std::vector<Certificate> certificates;
  // Sorted by name for allocation-free lookup by string_view; on duplicate
  // names the earliest certificate wins (stable sort + unique).
  std::vector<std::pair<std::string, size_t>> exact;
  std::vector<std::pair<std::string, size_t>> wildcard;  // "*.example.com" stored as "example.com"
  // ALPN protocols in server preference order, in wire format.
  std::vector<unsigned char> alpn_wire;
  std::optional<boost::asio::ssl::context> asio;
  // Installed on every SSL_CTX when tickets are on; null: OpenSSL's keys.
  std::shared_ptr<TicketKeys> ticket_keys;

  static std::optional<size_t> find(const std::vector<std::pair<std::string, size_t>>& table,
                                    std::string_view name) {
    auto it = std::lower_bound(table.begin(), table.end(), name,
                               [](const auto& entry, std::string_view n) { return entry.first < n; });
    if (it != table.end() && it->first == name) return it->second;
    return std::nullopt;
  }

  // `name` must already be lowercase without a trailing dot.
  size_t lookup(std::string_view name) const {
    if (auto i = find(exact, name)) return *i;
    // A wildcard covers exactly one leading, non-empty label.
    size_t dot = name.find('.');
    if (dot != std::string_view::npos && dot > 0) {
      if (auto i = find(wildcard, name.substr(dot + 1))) return *i;
    }
    return 0;
  }

  // Lowercases into `buf` (no allocation, the callback runs per handshake);
  // nullopt when the name cannot be a host name.
  static std::optional<std::string_view> normalize(std::string_view name, char (&buf)[kMaxServerName]) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > sizeof buf) return std::nullopt;
    for (size_t i = 0; i < name.size(); ++i) {
      char c = name[i];
      buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    return std::string_view(buf, name.size());
  }

  size_t select(std::string_view server_name) const {
    char buf[kMaxServerName];
    auto normalized = normalize(server_name, buf);
    return normalized ? lookup(*normalized) : 0;
  }

  static int on_servername(SSL* ssl, int* /*alert*/, void* arg) {
    const auto* self = static_cast<const Impl*>(arg);
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: stay on the default
    SSL_CTX* chosen = self->certificates[self->select(name)].ctx.get();
    if (SSL_get_SSL_CTX(ssl) != chosen && SSL_set_SSL_CTX(ssl, chosen) == nullptr) {
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
  }

  // Server preference: the first of our protocols that the client offers.
  static int on_alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                            unsigned int inlen, void* arg) {
    const auto* self = static_cast<const Impl*>(arg);
    const auto& ours = self->alpn_wire;
    for (size_t i = 0; i < ours.size(); i += 1 + ours[i]) {
      const unsigned char* proto = &ours[i + 1];
      unsigned char len = ours[i];
      for (unsigned int j = 0; j < inlen;) {
        unsigned char client_len = in[j];
        if (client_len == 0 || j + 1 + client_len > inlen) break;  // malformed: ignore the rest
        if (client_len == len && std::memcmp(in + j + 1, proto, len) == 0) {
          *out = proto;  // points into our storage, which outlives the handshake
          *outlen = len;
          return SSL_TLSEXT_ERR_OK;
        }
        j += 1 + client_len;
      }
    }
    // No overlap: continue without ALPN; the connection speaks HTTP/1.1.
    return SSL_TLSEXT_ERR_NOACK;
  }

  // A new SSL_CTX with the shared settings; nullptr after appending an error.
  SslCtxPtr make_ctx(const config::TlsConfig& config, const std::string& where,
                     std::vector<std::string>& errors) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
      errors.push_back(with_reason(where + ": cannot create TLS context", take_openssl_error()));
      return nullptr;
    }
    SSL_CTX* c = ctx.get();
    int min_version = config.min_version >= TLS1_3_VERSION ? TLS1_3_VERSION : TLS1_2_VERSION;
    bool ok = SSL_CTX_set_min_proto_version(c, min_version) == 1 &&
              SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) == 1 &&
              SSL_CTX_set_cipher_list(c, kTls12Ciphers) == 1 &&
              SSL_CTX_set_ciphersuites(c, kTls13Suites) == 1 && SSL_CTX_set1_groups_list(c, kGroups) == 1 &&
              SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof kSessionIdContext - 1) == 1;
    if (!ok) {
      errors.push_back(with_reason(where + ": cannot configure TLS context", take_openssl_error()));
      return nullptr;
    }
    uint64_t options = SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
    if (!config.session_tickets) options |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(c, options);
    // Frees the ~34 KiB of record buffers while a connection is idle.
    // NO_AUTO_CHAIN: the chain sent is the one in the certificate file; the
    // context has no trust store to complete it from, so building a chain
    // at every handshake (~5,500 instructions) found nothing to add.
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(c, kSessionCacheSize);
    SSL_CTX_set_default_passwd_cb(c, refuse_password);
    // How a TLS 1.3 connection's stream learns the traffic secrets it keeps
    // when it frees the SSL object after the handshake (TlsSocketStream).
    SSL_CTX_set_keylog_callback(c, TlsSocketStream::keylog_callback);
    // Never SSL_CTX_set_app_data: asio::ssl::context's destructor deletes it
    // as its own verify callback. Callbacks get `this` through their args.
    SSL_CTX_set_tlsext_servername_callback(c, on_servername);
    SSL_CTX_set_tlsext_servername_arg(c, this);
    SSL_CTX_set_alpn_select_cb(c, on_alpn_select, this);
    // On every SSL_CTX, not only the default: OpenSSL calls the callback of
    // the context a connection started on, and the callback finds the ring
    // through the context SNI may have moved the connection to since.
    if (config.session_tickets && ticket_keys && !TicketKeys::install(c, ticket_keys)) {
      errors.push_back(with_reason(where + ": cannot install TLS ticket keys", take_openssl_error()));
      return nullptr;
    }
    return ctx;
  }

  // Loads one certificate chain and its key; false after appending errors.
  bool load(const config::TlsConfig& config, const CertificateSource& src, std::vector<std::string>& errors) {
    bool readable = true;
    if (auto why = unreadable_reason(src.cert); !why.empty()) {
      errors.push_back(src.cert + ": cannot read: " + why);
      readable = false;
    }
    if (src.key != src.cert) {
      if (auto why = unreadable_reason(src.key); !why.empty()) {
        errors.push_back(src.key + ": cannot read: " + why);
        readable = false;
      }
    }
    if (!readable) return false;

    SslCtxPtr ctx = make_ctx(config, src.cert, errors);
    if (!ctx) return false;

    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), src.cert.c_str()) != 1) {
      errors.push_back(with_reason(src.cert + ": no usable certificate", take_openssl_error()));
      return false;
    }
    // Reading the key ourselves (rather than SSL_CTX_use_PrivateKey_file)
    // tells "no key" apart from "wrong key"; PEM_read skips the certificate
    // blocks of a combined chain+key file.
    std::unique_ptr<EVP_PKEY, EvpPkeyFree> pkey;
    {
      std::unique_ptr<BIO, BioFree> bio(BIO_new_file(src.key.c_str(), "r"));
      if (bio) pkey.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_password, nullptr));
    }
    if (!pkey) {
      std::string reason = take_openssl_error();
      if (has_private_key_block(src.key)) {
        errors.push_back(
            with_reason(src.key + ": cannot load private key (encrypted keys are not supported)", reason));
      } else {
        errors.push_back(src.key + ": no private key");
      }
      return false;
    }
    X509* leaf = SSL_CTX_get0_certificate(ctx.get());
    if (X509_check_private_key(leaf, pkey.get()) != 1 || SSL_CTX_use_PrivateKey(ctx.get(), pkey.get()) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      take_openssl_error();
      errors.push_back(src.key + ": private key does not match the certificate");
      return false;
    }

    size_t index = certificates.size();
    for (auto& name : certificate_names(leaf)) {
      if (name.starts_with("*.")) {
        wildcard.emplace_back(name.substr(2), index);
      } else {
        exact.emplace_back(std::move(name), index);
      }
    }
    certificates.push_back({src.name, std::move(ctx)});
    return true;
  }

  void finish_index() {
    for (auto* table : {&exact, &wildcard}) {
      std::stable_sort(table->begin(), table->end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      table->erase(std::unique(table->begin(), table->end(),
                               [](const auto& a, const auto& b) { return a.first == b.first; }),
                   table->end());
    }
  }
};

ServerTlsContext::ServerTlsContext() : impl_(std::make_unique<Impl>()) {}

ServerTlsContext::~ServerTlsContext() = default;

std::shared_ptr<ServerTlsContext> ServerTlsContext::create(const config::TlsConfig& config,
                                                           const std::vector<std::string>& supported_alpn,
                                                           std::vector<std::string>& errors,
                                                           std::shared_ptr<TicketKeys> ticket_keys) {
  std::shared_ptr<ServerTlsContext> self(new ServerTlsContext());
  Impl& impl = *self->impl_;
  if (config.session_tickets) impl.ticket_keys = std::move(ticket_keys);
  size_t errors_before = errors.size();

  for (const auto& proto : config.alpn) {
    if (proto.empty() || proto.size() > 255) continue;
    if (std::find(supported_alpn.begin(), supported_alpn.end(), proto) == supported_alpn.end()) continue;
    impl.alpn_wire.push_back(static_cast<unsigned char>(proto.size()));
    impl.alpn_wire.insert(impl.alpn_wire.end(), proto.begin(), proto.end());
  }

  std::vector<CertificateSource> sources;
  if (!config.certificates_dir.empty()) {
    sources = scan_directory(config.certificates_dir, errors);
  } else {
    for (const auto& files : config.certificate_files) {
      sources.push_back({file_stem(files.cert), files.cert, files.key});
    }
    if (sources.empty()) errors.push_back("tls: no certificate configured");
  }
  for (const auto& src : sources) impl.load(config, src, errors);
  ERR_clear_error();

  if (errors.size() != errors_before || impl.certificates.empty()) return nullptr;
  impl.finish_index();

  // asio::ssl::context takes over the reference it is given and frees it in
  // its destructor; hand it a reference of its own so the Impl's stays valid.
  SSL_CTX* default_ctx = impl.certificates.front().ctx.get();
  SSL_CTX_up_ref(default_ctx);
  impl.asio.emplace(default_ctx);
  return self;
}

boost::asio::ssl::context& ServerTlsContext::asio_context() { return *impl_->asio; }

std::string_view ServerTlsContext::certificate_for(std::string_view server_name) const {
  return impl_->certificates[impl_->select(server_name)].name;
}

std::string_view negotiated_alpn(const SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  if (data == nullptr) return {};
  return {reinterpret_cast<const char*>(data), len};
}

}  // namespace sag::tls
