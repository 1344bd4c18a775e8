// AdminHandler and the admin:: helpers: what the admin listener answers.
// The transport (AdminServer) is admin_listener.cc.
#include "gateway/admin_server.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cinttypes>
#include <cstdio>

#include "affinity/server.h"
#include "gateway/log.h"

namespace sag::gateway {

// ===================================================================== admin::

namespace admin {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A strict reader for the one flat object the API accepts (RFC 8259).
class JsonReader {
 public:
  explicit JsonReader(std::string_view s) : s_(s) {}

  void skip_ws() {
    while (i_ < s_.size() && is_ws(s_[i_])) ++i_;
  }
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool eat(char c) {
    if (peek() != c || at_end()) return false;
    ++i_;
    return true;
  }

  // At a '"': reads a string with its escapes into out.
  bool string(std::string& out) {
    out.clear();
    if (!eat('"')) return false;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) return false;
      switch (s_[i_++]) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate needs its low half
            uint32_t lo;
            if (!eat('\\') || !eat('u') || !hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return false;
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;  // unterminated
  }

  enum class Number { kInteger, kNotInteger, kMalformed };
  // At '-' or a digit: a JSON number. kInteger sets value (saturated at
  // UINT64_MAX) and negative.
  Number number(uint64_t& value, bool& negative) {
    value = 0;
    negative = eat('-');
    if (!std::isdigit(static_cast<unsigned char>(peek()))) return Number::kMalformed;
    if (peek() == '0') {
      ++i_;
      if (std::isdigit(static_cast<unsigned char>(peek()))) return Number::kMalformed;  // 007
    } else {
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const uint64_t d = static_cast<uint64_t>(s_[i_++] - '0');
        value = value > (UINT64_MAX - d) / 10 ? UINT64_MAX : value * 10 + d;
      }
    }
    bool fraction = false;
    if (eat('.')) {
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return Number::kMalformed;
      while (std::isdigit(static_cast<unsigned char>(peek()))) ++i_;
      fraction = true;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return Number::kMalformed;
      while (std::isdigit(static_cast<unsigned char>(peek()))) ++i_;
      fraction = true;
    }
    return fraction ? Number::kNotInteger : Number::kInteger;
  }

 private:
  bool hex4(uint32_t& cp) {
    if (s_.size() - i_ < 4) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex_value(s_[i_++]);
      if (h < 0) return false;
      cp = cp * 16 + static_cast<uint32_t>(h);
    }
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
};

// For error messages: a client-supplied key, bounded.
std::string quoted_key(const std::string& k) {
  return "'" + (k.size() > 40 ? k.substr(0, 40) + "..." : k) + "'";
}

}  // namespace

std::optional<ServerPatch> parse_server_patch(std::string_view body, std::string& error) {
  JsonReader r(body);
  ServerPatch patch;
  r.skip_ws();
  if (!r.eat('{')) {
    error = "the body must be a JSON object like {\"state\": \"drain\", \"weight\": 50}";
    return std::nullopt;
  }
  r.skip_ws();
  bool first = true;
  std::string key, text;
  for (;;) {
    if (first && r.eat('}')) break;
    first = false;
    if (r.peek() != '"') {
      error = "invalid JSON: expected a key in double quotes";
      return std::nullopt;
    }
    if (!r.string(key)) {
      error = "invalid JSON: bad string";
      return std::nullopt;
    }
    r.skip_ws();
    if (!r.eat(':')) {
      error = "invalid JSON: expected ':' after " + quoted_key(key);
      return std::nullopt;
    }
    r.skip_ws();
    if (key == "state") {
      if (patch.state) {
        error = "duplicate key 'state'";
        return std::nullopt;
      }
      if (r.peek() != '"') {
        error = "'state' must be a string: ready, drain or maint";
        return std::nullopt;
      }
      if (!r.string(text)) {
        error = "invalid JSON: bad string";
        return std::nullopt;
      }
      patch.state = affinity::parse_admin_state(text);
      if (!patch.state) {
        error = "'state' must be ready, drain or maint";
        return std::nullopt;
      }
    } else if (key == "weight") {
      if (patch.weight) {
        error = "duplicate key 'weight'";
        return std::nullopt;
      }
      const char c = r.peek();
      if (c != '-' && !std::isdigit(static_cast<unsigned char>(c))) {
        error = "'weight' must be an integer from 0 to 1000";
        return std::nullopt;
      }
      uint64_t v;
      bool negative;
      switch (r.number(v, negative)) {
        case JsonReader::Number::kMalformed:
          error = "invalid JSON: bad number";
          return std::nullopt;
        case JsonReader::Number::kNotInteger:
          error = "'weight' must be an integer from 0 to 1000";
          return std::nullopt;
        case JsonReader::Number::kInteger:
          break;
      }
      if ((negative && v != 0) || v > affinity::kMaxWeight) {
        error = "'weight' must be an integer from 0 to 1000";
        return std::nullopt;
      }
      patch.weight = static_cast<uint32_t>(v);
    } else {
      error = "unknown key " + quoted_key(key) + " (allowed: state, weight)";
      return std::nullopt;
    }
    r.skip_ws();
    if (r.eat(',')) {
      r.skip_ws();
      continue;
    }
    if (r.eat('}')) break;
    error = "invalid JSON: expected ',' or '}'";
    return std::nullopt;
  }
  r.skip_ws();
  if (!r.at_end()) {
    error = "invalid JSON: unexpected bytes after the object";
    return std::nullopt;
  }
  return patch;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20 || c == 0x7F) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A multi-byte UTF-8 sequence: copied when well formed (no overlongs,
    // no surrogates, at most U+10FFFF), else one U+FFFD per bad byte.
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

void append_label_value(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

void append_html(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  size_t pad = 0;
  if (in.size() % 4 == 0 && !in.empty()) {
    if (in.back() == '=') ++pad;
    if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
    if (pad == 1 && in[in.size() - 2] == '=') return std::nullopt;
  }
  const std::string_view data = in.substr(0, in.size() - pad);
  if (data.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(data.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : data) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // Leftover bits must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::optional<std::string> basic_credentials(std::string_view authorization) {
  size_t i = 0;
  while (i < authorization.size() && (authorization[i] == ' ' || authorization[i] == '\t')) ++i;
  std::string_view v = authorization.substr(i);
  static constexpr std::string_view kScheme = "basic";
  if (v.size() <= kScheme.size()) return std::nullopt;
  for (size_t k = 0; k < kScheme.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(v[k])) != kScheme[k]) return std::nullopt;
  v.remove_prefix(kScheme.size());
  if (v.front() != ' ' && v.front() != '\t') return std::nullopt;
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  auto decoded = base64_decode(v);
  if (!decoded || decoded->find(':') == std::string::npos) return std::nullopt;
  return decoded;
}

}  // namespace admin

// ================================================================= AdminHandler

namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kHtml = "text/html; charset=utf-8";

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> d{};
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), d.data(), &n, EVP_sha256(), nullptr);
  return d;
}

AdminResponse json_error(unsigned status, std::string_view message) {
  AdminResponse r;
  r.status = status;
  r.content_type = kJson;
  r.body = "{\"error\": ";
  admin::append_json_string(r.body, message);
  r.body += "}\n";
  return r;
}

AdminResponse method_not_allowed(std::string allow) {
  AdminResponse r = json_error(405, "method not allowed");
  r.allow = std::move(allow);
  return r;
}

// %XX in a path segment; nullopt when malformed.
std::optional<std::string> percent_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

namespace {

void append_u64(std::string& out, uint64_t v) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%" PRIu64, v);
  out.append(buf, static_cast<size_t>(n));
}

void append_i64(std::string& out, int64_t v) {
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%" PRId64, v);
  out.append(buf, static_cast<size_t>(n));
}

// Microseconds as seconds with 6 decimals, exactly (no floating point).
void append_seconds(std::string& out, uint64_t us) {
  char buf[48];
  const int n = std::snprintf(buf, sizeof buf, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
  out.append(buf, static_cast<size_t>(n));
}

void metric_header(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

using Label = std::pair<std::string_view, std::string_view>;

// name{k="v",...} value\n
void metric_line(std::string& out, std::string_view name, std::initializer_list<Label> labels,
                 uint64_t value) {
  out += name;
  if (labels.size() > 0) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      admin::append_label_value(out, v);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_u64(out, value);
  out += '\n';
}

struct ClassCounts {
  std::array<uint64_t, 5> n{};  // 1xx .. 5xx
};

ClassCounts response_classes(const affinity::Server& s) {
  ClassCounts c;
  for (unsigned st = 100; st < 600; ++st) c.n[st / 100 - 1] += s.responses(st);
  return c;
}

// "12.3 ms" for the stats page; "-" without samples.
std::string format_ms(double us) {
  if (us < 0) return "-";
  const double ms = us / 1000.0;
  char buf[32];
  if (ms < 10) std::snprintf(buf, sizeof buf, "%.2f ms", ms);
  else if (ms < 100) std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  else std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  return buf;
}

}  // namespace

AdminResponse admin::error_response(unsigned status, std::string_view message) {
  return json_error(status, message);
}

AdminHandler::AdminHandler(std::shared_ptr<const config::GatewayConfig> config,
                           affinity::BackendSet& backends, const session::GatewayStats& stats,
                           Hooks hooks)
    : config_(std::move(config)), backends_(backends), stats_(stats), hooks_(std::move(hooks)) {
  if (config_->admin && !config_->admin->user.empty() && !config_->admin->password.empty()) {
    auth_ = true;
    expected_digest_ = sha256(config_->admin->user + ":" + config_->admin->password);
  }
}

bool AdminHandler::authorized(std::string_view authorization) const {
  if (!auth_) return true;
  const auto credentials = admin::basic_credentials(authorization);
  if (!credentials) return false;
  // Digests of equal length compared in constant time: neither the length
  // nor the content of the expected credentials leaks through timing.
  const auto got = sha256(*credentials);
  return CRYPTO_memcmp(got.data(), expected_digest_.data(), got.size()) == 0;
}

std::string AdminHandler::last_check(const affinity::Server& s) const {
  if (!hooks_.last_check) return "-";
  std::string t = hooks_.last_check(s);
  return t.empty() ? "-" : t;
}

AdminResponse AdminHandler::handle(const AdminRequest& req) const {
  AdminResponse r = route(req);
  r.head = req.method == "HEAD";
  return r;
}

AdminResponse AdminHandler::route(const AdminRequest& req) const {
  const std::string_view path = req.target.substr(0, req.target.find_first_of("?#"));
  const bool get = req.method == "GET" || req.method == "HEAD";
  auto ok = [&](const char* type, std::string body) {
    AdminResponse r;
    r.content_type = type;
    r.body = std::move(body);
    return r;
  };

  if (path == "/healthz") {
    if (!get) return method_not_allowed("GET, HEAD");
    if (draining_.load(std::memory_order_relaxed)) {
      AdminResponse r = ok(kText, "draining\n");
      r.status = 503;
      return r;
    }
    return ok(kText, "ok\n");
  }
  if (!authorized(req.authorization)) {
    AdminResponse r = json_error(401, "authentication required");
    r.challenge = true;
    return r;
  }
  if (path == "/") {
    if (!get) return method_not_allowed("GET, HEAD");
    return ok(kHtml, stats_page());
  }
  if (path == "/metrics") {
    if (!get) return method_not_allowed("GET, HEAD");
    return ok(kMetricsType, metrics());
  }
  if (path == "/api/backends") {
    if (!get) return method_not_allowed("GET, HEAD");
    return ok(kJson, backends_json());
  }
  // /api/backends/{backend}/servers/{server}
  static constexpr std::string_view kPrefix = "/api/backends/";
  if (path.starts_with(kPrefix)) {
    std::string_view rest = path.substr(kPrefix.size());
    const size_t slash = rest.find('/');
    static constexpr std::string_view kServers = "/servers/";
    if (slash != std::string_view::npos && rest.substr(slash).starts_with(kServers)) {
      const std::string_view b_raw = rest.substr(0, slash);
      const std::string_view s_raw = rest.substr(slash + kServers.size());
      const auto b = percent_decode(b_raw);
      const auto s = percent_decode(s_raw);
      if (b && s && !b->empty() && !s->empty() && s_raw.find('/') == std::string_view::npos) {
        if (req.method == "PUT") return put_server(*b, *s, req.body);
        if (!get) return method_not_allowed("GET, HEAD, PUT");
        const affinity::Backend* backend = backends_.find(*b);
        if (!backend) return json_error(404, "unknown backend '" + *b + "'");
        const affinity::Server* server = backend->find_server(*s);
        if (!server) return json_error(404, "unknown server '" + *s + "' in backend '" + *b + "'");
        std::string body;
        const auto all = backends_.backends();
        size_t bi = 0;
        while (bi < all.size() && all[bi].get() != backend) ++bi;
        append_server_json(body, bi, *server);
        body += '\n';
        return ok(kJson, std::move(body));
      }
    }
  }
  return json_error(404, "not found");
}

AdminResponse AdminHandler::put_server(std::string_view backend_name, std::string_view server_name,
                                       std::string_view body) const {
  const auto all = backends_.backends();
  size_t bi = 0;
  while (bi < all.size() && all[bi]->name() != backend_name) ++bi;
  if (bi == all.size()) return json_error(404, "unknown backend '" + std::string(backend_name) + "'");
  const affinity::Backend& backend = *all[bi];
  affinity::Server* server = backend.find_server(server_name);
  if (!server)
    return json_error(404, "unknown server '" + std::string(server_name) + "' in backend '" +
                               std::string(backend_name) + "'");
  std::string error;
  const auto patch = admin::parse_server_patch(body, error);
  if (!patch) return json_error(400, error);

  if (patch->state || patch->weight) {
    // The values this PUT leaves, taken before it applies them: what the
    // hook publishes, whatever else changes the server meanwhile.
    const affinity::AdminState state = patch->state.value_or(server->admin_state());
    const uint32_t weight = patch->weight.value_or(server->weight());
    const std::string change = server->apply_admin(state, weight, std::chrono::steady_clock::now());
    log_info("admin: " + backend.name() + "/" + server->name() + (change.empty() ? " unchanged" : change));
    if (hooks_.on_change) hooks_.on_change(backend, *server, state, weight);
  }
  AdminResponse r;
  r.content_type = kJson;
  append_server_json(r.body, bi, *server);
  r.body += '\n';
  return r;
}

void AdminHandler::append_server_json(std::string& out, size_t bi, const affinity::Server& s) const {
  const ClassCounts classes = response_classes(s);
  out += "{\"name\": ";
  admin::append_json_string(out, s.name());
  out += ", \"address\": ";
  admin::append_json_string(out, s.endpoint().to_string());
  out += ", \"state\": \"";
  out += affinity::to_string(s.admin_state());
  out += "\", \"health\": \"";
  out += s.up() ? "up" : "down";
  out += "\", \"weight\": ";
  append_u64(out, s.weight());
  out += ", \"active\": ";
  append_u64(out, s.active_requests());
  out += ", \"requests\": ";
  append_u64(out, s.total_requests());
  // Requests this server got because of persistence (cookie, learn or
  // source hit): the gateway keeps no per-session table for cookie pins.
  out += ", \"pinned\": ";
  append_u64(out, stats_.persistent_requests(bi, s.index()));
  out += ", \"last_check\": ";
  admin::append_json_string(out, last_check(s));
  out += ", \"backup\": ";
  out += s.backup() ? "true" : "false";
  out += ", \"ejected\": ";
  out += s.ejected() ? "true" : "false";
  out += ", \"responses\": {";
  for (size_t k = 0; k < classes.n.size(); ++k) {
    if (k) out += ", ";
    out += '"';
    out += static_cast<char>('1' + k);
    out += "xx\": ";
    append_u64(out, classes.n[k]);
  }
  out += "}, \"response_time_ms\": ";
  if (s.has_response_time()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f",
                  static_cast<double>(s.response_time_ewma().count()) / 1000.0);
    out += buf;
  } else {
    out += "null";
  }
  out += '}';
}

std::string AdminHandler::backends_json() const {
  std::string out = "{\"backends\": [";
  const auto all = backends_.backends();
  for (size_t bi = 0; bi < all.size(); ++bi) {
    const affinity::Backend& b = *all[bi];
    if (bi) out += ", ";
    out += "{\"name\": ";
    admin::append_json_string(out, b.name());
    out += ", \"balance\": ";
    admin::append_json_string(out, config::to_string(b.config().balance));
    out += ", \"servers\": [";
    const auto servers = b.servers();
    for (size_t si = 0; si < servers.size(); ++si) {
      if (si) out += ", ";
      append_server_json(out, bi, *servers[si]);
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

std::string AdminHandler::metrics() const {
  std::string out;
  out.reserve(8192);
  const auto all = backends_.backends();
  const auto& cfg = *config_;
  char code[4];
  auto code_text = [&](unsigned st) {
    std::snprintf(code, sizeof code, "%u", st);
    return std::string_view(code, 3);
  };

  metric_header(out, "gateway_requests_total", "counter",
                "Requests answered, by backend, server and exact status; server=\"-\": the "
                "gateway answered itself.");
  for (size_t bi = 0; bi < all.size(); ++bi) {
    const affinity::Backend& b = *all[bi];
    for (const affinity::Server* s : b.servers())
      for (unsigned st = 100; st < 600; ++st)
        if (const uint64_t n = s->responses(st))
          metric_line(out, "gateway_requests_total",
                      {{"backend", b.name()}, {"server", s->name()}, {"code", code_text(st)}}, n);
    for (unsigned st = 100; st < 600; ++st)
      if (const uint64_t n = stats_.gateway_responses(bi, st))
        metric_line(out, "gateway_requests_total",
                    {{"backend", b.name()}, {"server", "-"}, {"code", code_text(st)}}, n);
  }
  for (unsigned st = 100; st < 600; ++st)
    if (const uint64_t n = stats_.gateway_responses(session::GatewayStats::kNoBackend, st))
      metric_line(out, "gateway_requests_total",
                  {{"backend", "-"}, {"server", "-"}, {"code", code_text(st)}}, n);

  metric_header(out, "gateway_request_duration_seconds", "histogram",
                "Time from the request's first byte (or the connection's accept) to the end "
                "of its response.");
  auto histogram = [&](std::string_view backend, const session::DurationHistogram& h,
                       bool skip_empty) {
    using H = session::DurationHistogram;
    std::array<uint64_t, H::kFinite + 1> c;
    uint64_t total = 0;
    for (size_t i = 0; i < c.size(); ++i) total += c[i] = h.counts[i].load(std::memory_order_relaxed);
    if (skip_empty && total == 0) return;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      cumulative += c[i];
      metric_line(out, "gateway_request_duration_seconds_bucket",
                  {{"backend", backend}, {"le", H::kLabels[i]}}, cumulative);
    }
    out += "gateway_request_duration_seconds_sum{backend=\"";
    admin::append_label_value(out, backend);
    out += "\"} ";
    append_seconds(out, h.sum_us.load(std::memory_order_relaxed));
    out += '\n';
    metric_line(out, "gateway_request_duration_seconds_count", {{"backend", backend}}, total);
  };
  for (size_t bi = 0; bi < all.size(); ++bi)
    if (const auto* h = stats_.duration(bi)) histogram(all[bi]->name(), *h, false);
  if (const auto* h = stats_.duration(session::GatewayStats::kNoBackend)) histogram("-", *h, true);

  metric_header(out, "gateway_server_up", "gauge",
                "1 when the server is up (healthy and not ejected), else 0.");
  for (const auto& b : all)
    for (const affinity::Server* s : b->servers())
      metric_line(out, "gateway_server_up", {{"backend", b->name()}, {"server", s->name()}},
                  s->up() ? 1 : 0);

  metric_header(out, "gateway_connections_active", "gauge", "Open client connections.");
  for (size_t li = 0; li < cfg.listeners.size(); ++li) {
    const int64_t n = stats_.connections_active(li);
    metric_line(out, "gateway_connections_active", {{"listener", cfg.listeners[li].name}},
                n > 0 ? static_cast<uint64_t>(n) : 0);
  }

  metric_header(out, "gateway_connections_refused_total", "counter",
                "Client connections closed at once because limits.max_connections was reached.");
  for (size_t li = 0; li < cfg.listeners.size(); ++li)
    metric_line(out, "gateway_connections_refused_total", {{"listener", cfg.listeners[li].name}},
                stats_.connections_refused(li));

  metric_header(out, "gateway_tls_handshakes_total", "counter",
                "TLS handshakes on client connections, by result.");
  for (size_t li = 0; li < cfg.listeners.size(); ++li) {
    if (!cfg.listeners[li].tls) continue;
    metric_line(out, "gateway_tls_handshakes_total",
                {{"listener", cfg.listeners[li].name}, {"result", "ok"}},
                stats_.tls_handshakes(li, true));
    metric_line(out, "gateway_tls_handshakes_total",
                {{"listener", cfg.listeners[li].name}, {"result", "failed"}},
                stats_.tls_handshakes(li, false));
  }

  metric_header(out, "gateway_persistence_total", "counter",
                "Persistence decisions, by outcome.");
  for (const auto& b : all) {
    const auto& pc = b->persistence_counters();
    const std::pair<const char*, uint64_t> results[] = {
        {"hit", pc.hit.load(std::memory_order_relaxed)},
        {"miss", pc.miss.load(std::memory_order_relaxed)},
        {"redispatch", pc.redispatch.load(std::memory_order_relaxed)},
        {"invalid", pc.invalid.load(std::memory_order_relaxed)},
        {"expired", pc.expired.load(std::memory_order_relaxed)},
    };
    for (const auto& [result, n] : results)
      metric_line(out, "gateway_persistence_total", {{"backend", b->name()}, {"result", result}}, n);
  }

  metric_header(out, "gateway_retries_total", "counter",
                "Requests sent again to another server after a connection failure.");
  for (size_t bi = 0; bi < all.size(); ++bi)
    metric_line(out, "gateway_retries_total", {{"backend", all[bi]->name()}}, stats_.retries(bi));

  metric_header(out, "gateway_affinity_store_errors_total", "counter",
                "Affinity store operations that failed (e.g. Redis unreachable).");
  metric_line(out, "gateway_affinity_store_errors_total", {}, stats_.affinity_store_errors());
  return out;
}

std::string AdminHandler::stats_page() const {
  std::string out;
  out.reserve(8192);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"5\"><title>sag: statistics</title>\n<style>"
      "body{font-family:sans-serif;margin:1em 2em;color:#222}"
      "table{border-collapse:collapse;margin:.5em 0 1.5em}"
      "th,td{border:1px solid #bbb;padding:2px 8px;text-align:right;white-space:nowrap}"
      "th{background:#eee}td.l{text-align:left}tr.down td{background:#fdd}"
      "tr.drain td{background:#ffd}tr.maint td{background:#e4e4e4}"
      "tr.gw td{color:#555;font-style:italic}small{color:#666}"
      "</style></head><body>\n<h1>sag statistics</h1>\n<p>";
  const auto& cfg = *config_;
  for (size_t li = 0; li < cfg.listeners.size(); ++li) {
    if (li) out += " &middot; ";
    out += "listener <b>";
    admin::append_html(out, cfg.listeners[li].name);
    out += "</b>: ";
    append_i64(out, std::max<int64_t>(0, stats_.connections_active(li)));
    out += " connections";
  }
  out += " &middot; affinity store errors: ";
  append_u64(out, stats_.affinity_store_errors());
  out += "</p>\n";

  const auto all = backends_.backends();
  for (size_t bi = 0; bi < all.size(); ++bi) {
    const affinity::Backend& b = *all[bi];
    const auto& pc = b.persistence_counters();
    out += "<h2>backend ";
    admin::append_html(out, b.name());
    out += " <small>(";
    out += config::to_string(b.config().balance);
    out += "; persistence hit ";
    append_u64(out, pc.hit.load(std::memory_order_relaxed));
    out += ", miss ";
    append_u64(out, pc.miss.load(std::memory_order_relaxed));
    out += ", redispatch ";
    append_u64(out, pc.redispatch.load(std::memory_order_relaxed));
    out += "; retries ";
    append_u64(out, stats_.retries(bi));
    out += ")</small></h2>\n<table>\n<tr><th>server</th><th>address</th><th>state</th>"
           "<th>health</th><th>weight</th><th>active</th><th>requests</th><th>2xx</th>"
           "<th>3xx</th><th>4xx</th><th>5xx</th><th>pinned</th><th>p50</th><th>p99</th>"
           "<th>last check</th></tr>\n";
    for (const affinity::Server* s : b.servers()) {
      const ClassCounts c = response_classes(*s);
      const char* state = affinity::to_string(s->admin_state());
      const bool up = s->up();
      out += "<tr class=\"";
      out += !up ? "down" : s->admin_state() == affinity::AdminState::kReady ? "ready" : state;
      out += "\"><td class=\"l\">";
      admin::append_html(out, s->name());
      if (s->backup()) out += " <small>(backup)</small>";
      out += "</td><td class=\"l\">";
      admin::append_html(out, s->endpoint().to_string());
      out += "</td><td class=\"l\">";
      out += state;
      out += "</td><td class=\"l\">";
      out += up ? "up" : s->ejected() ? "down (ejected)" : "down";
      out += "</td><td>";
      append_u64(out, s->weight());
      out += "</td><td>";
      append_u64(out, s->active_requests());
      out += "</td><td>";
      append_u64(out, s->total_requests());
      for (size_t k = 1; k < 5; ++k) {
        out += "</td><td>";
        append_u64(out, c.n[k]);
      }
      out += "</td><td>";
      append_u64(out, stats_.persistent_requests(bi, s->index()));
      const session::LatencyHistogram* lat = stats_.server_latency(bi, s->index());
      out += "</td><td>";
      out += format_ms(lat ? lat->quantile_us(0.50) : -1);
      out += "</td><td>";
      out += format_ms(lat ? lat->quantile_us(0.99) : -1);
      out += "</td><td class=\"l\">";
      admin::append_html(out, last_check(*s));
      out += "</td></tr>\n";
    }
    // The gateway's own answers for this backend (502, 503, 504, ...).
    std::array<uint64_t, 5> gw{};
    for (unsigned st = 100; st < 600; ++st) gw[st / 100 - 1] += stats_.gateway_responses(bi, st);
    out += "<tr class=\"gw\"><td class=\"l\">gateway</td><td class=\"l\">-</td><td></td><td></td>"
           "<td></td><td></td><td></td>";
    for (size_t k = 1; k < 5; ++k) {
      out += "<td>";
      append_u64(out, gw[k]);
      out += "</td>";
    }
    out += "<td></td><td></td><td></td><td></td></tr>\n</table>\n";
  }
  out += "<p><small>pinned: requests served because of persistence (cookie, learn or source). "
         "p50/p99: whole request time. Refreshes every 5 s. "
         "<a href=\"/metrics\">metrics</a> &middot; <a href=\"/api/backends\">JSON</a>"
         "</small></p>\n</body></html>\n";
  return out;
}

}  // namespace sag::gateway
