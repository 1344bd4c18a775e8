// YAML → GatewayConfig (SPEC.md §2).
//
// The loader walks the document once, section by section, with a small
// Reader per YAML map. A Reader hands out typed values by key, remembers
// which keys were asked for, and reports every key nobody asked for as
// unknown. Every problem becomes a ConfigError with the position of the node
// it concerns; nothing stops the walk, so one `gateway --check` run shows all
// of them. Checks that need the whole document (backend references, bind
// conflicts) run at the end, with positions remembered while walking.
#include "config/config_loader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <type_traits>
#include <utility>

namespace sag::config {

std::string ConfigError::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

namespace fs = std::filesystem;

// Digits only: YAML's own number forms (0x1F, 1_000, +5, 1e3) are refused so
// that what the operator reads is what the gateway uses.
std::optional<uint64_t> parse_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

size_t leading_digits(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  return i;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  // Timers add durations to steady_clock::now() in nanoseconds; keeping
  // every duration below half of what int64 nanoseconds hold (~146 years)
  // means that sum can never overflow.
  constexpr uint64_t kMaxMs = std::numeric_limits<int64_t>::max() / 1'000'000 / 2;
  const size_t n = leading_digits(text);
  auto value = parse_digits(text.substr(0, n));
  if (!value) return std::nullopt;
  const std::string_view unit = text.substr(n);
  uint64_t ms_per_unit = 0;
  if (unit == "ms") ms_per_unit = 1;
  else if (unit == "s") ms_per_unit = 1000;
  else if (unit == "m") ms_per_unit = 60 * 1000;
  else if (unit == "h") ms_per_unit = 60 * 60 * 1000;
  else if (unit.empty() && *value == 0) return Duration{0};  // a bare number means nothing else
  else return std::nullopt;
  if (*value > kMaxMs / ms_per_unit) return std::nullopt;
  return Duration{static_cast<int64_t>(*value * ms_per_unit)};
}

std::optional<uint64_t> parse_size(std::string_view text) {
  const size_t n = leading_digits(text);
  auto value = parse_digits(text.substr(0, n));
  if (!value) return std::nullopt;
  const std::string_view unit = text.substr(n);
  uint64_t bytes_per_unit = 0;
  if (unit.empty()) bytes_per_unit = 1;
  else if (unit == "KiB") bytes_per_unit = uint64_t{1} << 10;
  else if (unit == "MiB") bytes_per_unit = uint64_t{1} << 20;
  else if (unit == "GiB") bytes_per_unit = uint64_t{1} << 30;
  else return std::nullopt;
  if (*value > std::numeric_limits<uint64_t>::max() / bytes_per_unit) return std::nullopt;
  return *value * bytes_per_unit;
}

namespace {

// ---------------------------------------------------------------------------

struct Pos {
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

Pos pos_of(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

// Values echoed into messages: control characters escaped so every error
// stays one line, and runaway values (a mangled file can make a whole section
// one key) cut short. Paths are never cut.
std::string quote_escaped(std::string_view s, size_t max_bytes) {
  std::string out = "'";
  size_t n = s.size() <= max_bytes ? s.size() : max_bytes;
  while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // whole UTF-8 chars
  for (char c : s.substr(0, n)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (u < 0x20 || u == 0x7f) {
      const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  if (n < s.size()) out += "...";
  return out + "'";
}
std::string quote(std::string_view s) { return quote_escaped(s, 80); }
std::string quote_path(std::string_view s) { return quote_escaped(s, std::string_view::npos); }

const char* kind_of(const YAML::Node& n) {
  if (n.IsMap()) return "a map";
  if (n.IsSequence()) return "a list";
  if (n.IsNull()) return "nothing";
  return "a value";
}

// Names end up in admin URL paths, log fields and metric labels, so they keep
// to HAProxy's set of characters for proxy and server names.
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
  });
}

// RFC 6265 cookie-name = token (RFC 9110 tchar).
bool valid_token(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
  });
}

// Cookie attribute values (Path, Domain) must not end the attribute early.
bool valid_attribute_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x21 || u == 0x7f || c == ';' || c == ',';
  });
}

bool valid_hash_key(std::string_view k) {
  if (k == "path" || k == "source") return true;
  for (std::string_view prefix : {"header:", "cookie:"})
    if (k.substr(0, prefix.size()) == prefix) return valid_token(k.substr(prefix.size()));
  return false;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

template <typename E>
using Choices = std::initializer_list<std::pair<std::string_view, E>>;

template <typename E>
std::string list_choices(Choices<E> table) {
  std::string s;
  for (const auto& [name, value] : table) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

// ---------------------------------------------------------------------------

class Reader;

class Loader {
 public:
  Loader(std::string file, std::string base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  LoadResult run(std::string_view yaml);

  void error(Pos p, std::string message) { errors_.push_back({file_, p.line, p.column, std::move(message)}); }

  std::string resolve(const std::string& path) const {
    if (path.empty() || base_dir_.empty() || fs::path(path).is_absolute()) return path;
    return (fs::path(base_dir_) / path).string();
  }

  // Reads a small regular file; on failure returns nullopt and says why.
  static std::optional<std::string> read_small_file(const std::string& path, std::string& why, size_t max_bytes);

 private:
  friend class Reader;
  struct BackendRef {
    std::string name;
    Pos at;
  };
  struct BindUse {
    Endpoint endpoint;
    std::string owner;
    Pos at;
  };

  void load_root(const YAML::Node& root, GatewayConfig& cfg);
  void load_workers(Reader& r, GatewayConfig& cfg);
  void load_listener(const YAML::Node& n, size_t index, GatewayConfig& cfg);
  std::optional<TlsConfig> load_tls(Reader& parent);
  void load_backend(const YAML::Node& n, size_t index, GatewayConfig& cfg);
  void load_health_check(Reader& parent, HealthCheckConfig& hc);
  PersistenceConfig load_persistence(Reader& parent);
  CookieConfig load_cookie(Reader& persistence, const std::string& owner);
  void load_forwarded(Reader& parent, ForwardedConfig& f);
  void load_affinity_store(Reader& parent, AffinityStoreConfig& s);
  void load_limits(Reader& parent, LimitsConfig& l);
  void load_timeouts(Reader& parent, TimeoutsConfig& t);
  void load_admin(Reader& parent, std::optional<AdminConfig>& admin);
  void load_access_log(Reader& parent, AccessLogConfig& a);
  // The first line of the file named by `key` (a password, a secret).
  void load_password(Reader& r, std::string& file, std::string& password, const char* key = "password_file");
  void note_bind(const Endpoint& ep, const std::string& owner, Pos at);
  // Records `name`; when it was seen before, returns where.
  struct Seen {
    std::string name;
    Pos at;
  };
  static std::optional<Pos> seen_before(std::vector<Seen>& seen, const std::string& name, Pos at);

  std::string file_;
  std::string base_dir_;
  std::vector<ConfigError> errors_;
  std::vector<BackendRef> backend_refs_;
  std::vector<BindUse> binds_;
  std::vector<Seen> listener_names_;
  std::vector<Seen> backend_names_;
};

// ---------------------------------------------------------------------------
// Reader: one YAML map. Getters return true only when the key is present and
// its value valid (then `out` is set); otherwise `out` keeps its default and
// any problem is already reported at the value's position.
class Reader {
 public:
  // `fallback` is where to point when `node` is empty (a YAML null carries
  // the position of whatever token follows it, often on the next line).
  Reader(Loader& l, const YAML::Node& node, Pos fallback, std::string what)
      : l_(&l), node_(node), pos_(node.IsNull() ? fallback : pos_of(node)), what_(std::move(what)) {
    if (!node.IsNull() && !node.IsMap()) {
      l_->error(pos_, subject() + " must be a map (key: value), not " + kind_of(node));
      return;
    }
    ok_ = true;
    if (node.IsNull()) return;
    for (auto it = node.begin(); it != node.end(); ++it) {
      // Copies, not references: yaml-cpp's iterator hands out a temporary pair.
      const YAML::Node k = it->first;
      const YAML::Node v = it->second;
      if (!k.IsScalar()) {
        l_->error(pos_of(k), "keys must be plain names " + in());
        continue;
      }
      const std::string key = k.Scalar();
      if (const Entry* first = find(key)) {
        // Reported by finish(), once the section knows its name.
        duplicates_.push_back({key, pos_of(k), pos_of(first->key).line});
        continue;
      }
      entries_.push_back(Entry{key, k, v, false});
    }
  }
  Reader(Reader&& o) noexcept
      : l_(o.l_), node_(std::move(o.node_)), pos_(o.pos_), what_(std::move(o.what_)), ok_(o.ok_),
        finished_(o.finished_), entries_(std::move(o.entries_)), duplicates_(std::move(o.duplicates_)),
        asked_(std::move(o.asked_)) {
    o.finished_ = true;
  }
  Reader& operator=(Reader&&) = delete;
  ~Reader() { finish(); }

  bool ok() const { return ok_; }
  Pos pos() const { return pos_; }
  const std::string& what() const { return what_; }
  void rename(std::string what) { what_ = std::move(what); }
  Loader& loader() { return *l_; }

  // "in backend 'app'", or "at the top level".
  std::string in() const { return what_.empty() ? "at the top level" : "in " + what_; }

  bool has(std::string_view key) {
    asked_.emplace_back(key);
    return find(key) != nullptr;
  }

  // The value of `key`, marked as consumed; nullptr when absent.
  const YAML::Node* get(std::string_view key) {
    asked_.emplace_back(key);
    Entry* e = find(key);
    if (!e) return nullptr;
    e->used = true;
    return &e->value;
  }

  // Position of the value (or of its key when the value is empty).
  Pos at(std::string_view key) const {
    const Entry* e = find(key);
    if (!e) return pos_;
    return e->value.IsNull() ? pos_of(e->key) : pos_of(e->value);
  }
  Pos key_at(std::string_view key) const {
    const Entry* e = find(key);
    return e ? pos_of(e->key) : pos_;
  }

  void missing(std::string_view key, std::string_view hint = {}) {
    l_->error(pos_, "missing required key " + quote(key) + " " + in() + std::string(hint));
  }

  // A child map; check ok() on the result. Absent keys give an empty reader.
  Reader child(std::string_view key, std::string what) {
    const YAML::Node* n = get(key);
    return Reader(*l_, n ? *n : YAML::Node(), at(key), std::move(what));
  }

  // A list's items; nullopt when absent or not a list (the latter reported).
  // An empty value counts as an empty list.
  std::optional<std::vector<YAML::Node>> list(std::string_view key) {
    const YAML::Node* n = get(key);
    if (!n) return std::nullopt;
    std::vector<YAML::Node> items;
    if (n->IsNull()) return items;
    if (!n->IsSequence()) {
      l_->error(at(key), quote(key) + ": expected a list, got " + kind_of(*n));
      return std::nullopt;
    }
    for (const auto& item : *n) items.push_back(item);
    return items;
  }

  // The scalar text of `key`; reports non-scalars. Empty values are refused
  // unless `empty_ok` (strings may be written as `key:` or `key: ""`).
  std::optional<std::string> scalar(std::string_view key, std::string_view expected, bool empty_ok = false) {
    const YAML::Node* n = get(key);
    if (!n) return std::nullopt;
    if (n->IsNull()) {
      if (empty_ok) return std::string();
      l_->error(at(key), quote(key) + ": missing value (expected " + std::string(expected) + ")");
      return std::nullopt;
    }
    if (!n->IsScalar()) {
      l_->error(at(key), quote(key) + ": expected " + std::string(expected) + ", got " + kind_of(*n));
      return std::nullopt;
    }
    return n->Scalar();
  }

  bool read(std::string_view key, std::string& out) {
    auto s = scalar(key, "a string", true);
    if (!s) return false;
    out = std::move(*s);
    return true;
  }

  // A string that must be there and not be empty.
  std::optional<std::string> required(std::string_view key) {
    if (!has(key)) {
      missing(key);
      return std::nullopt;
    }
    auto s = scalar(key, "a string", true);
    if (s && s->empty()) {
      l_->error(at(key), quote(key) + " must not be empty");
      return std::nullopt;
    }
    return s;
  }

  bool read(std::string_view key, bool& out) {
    auto s = scalar(key, "true or false");
    if (!s) return false;
    if (*s == "true" || *s == "false") {
      out = *s == "true";
      return true;
    }
    l_->error(at(key), quote(key) + ": expected true or false, got " + quote(*s));
    return false;
  }

  template <typename T>
  bool read_uint(std::string_view key, T& out, uint64_t min, uint64_t max) {
    auto s = scalar(key, "a whole number");
    if (!s) return false;
    auto v = parse_digits(*s);
    if (!v) {
      if (!s->empty() && s->front() == '-' && parse_digits(std::string_view(*s).substr(1)))
        l_->error(at(key), quote(key) + ": must not be negative, got " + *s);
      else if (leading_digits(*s) == s->size())
        l_->error(at(key), quote(key) + ": " + *s + " is out of range (" + std::to_string(min) + ".." +
                               std::to_string(max) + ")");
      else
        l_->error(at(key), quote(key) + ": expected a whole number, got " + quote(*s));
      return false;
    }
    if (*v < min || *v > max) {
      l_->error(at(key), quote(key) + ": " + *s + " is out of range (" + std::to_string(min) + ".." +
                             std::to_string(max) + ")");
      return false;
    }
    out = static_cast<T>(*v);
    return true;
  }

  bool read(std::string_view key, Duration& out) {
    auto s = scalar(key, "a duration");
    if (!s) return false;
    auto d = parse_duration(*s);
    if (!d) {
      l_->error(at(key), quote(key) + ": bad duration " + quote(*s) + " (use e.g. 250ms, 5s, 30m, 8h)");
      return false;
    }
    out = *d;
    return true;
  }

  // A duration that must not be 0 (timers that would fire at once, forever).
  bool read_positive(std::string_view key, Duration& out) {
    Duration d{};
    if (!read(key, d)) return false;
    if (d.count() == 0) {
      l_->error(at(key), quote(key) + ": must be more than 0");
      return false;
    }
    out = d;
    return true;
  }

  bool read_size(std::string_view key, uint64_t& out, uint64_t min = 0) {
    auto s = scalar(key, "a size");
    if (!s) return false;
    auto v = parse_size(*s);
    if (!v) {
      l_->error(at(key), quote(key) + ": bad size " + quote(*s) + " (use e.g. 512, 16KiB, 1MiB, 1GiB)");
      return false;
    }
    if (*v < min) {
      l_->error(at(key), quote(key) + ": must be at least " + std::to_string(min) + " bytes");
      return false;
    }
    out = *v;
    return true;
  }

  template <typename E>
  bool read_enum(std::string_view key, E& out, std::type_identity_t<Choices<E>> table) {
    auto s = scalar(key, "one of " + list_choices(table));
    if (!s) return false;
    for (const auto& [name, value] : table) {
      if (*s == name) {
        out = value;
        return true;
      }
    }
    l_->error(at(key), quote(key) + ": unknown value " + quote(*s) + " (use " + list_choices(table) + ")");
    return false;
  }

  // Reports the keys nobody asked for, with a suggestion when one is close.
  void finish() {
    if (finished_ || !l_) return;
    finished_ = true;
    for (const Duplicate& d : duplicates_)
      l_->error(d.at, "duplicate key " + quote(d.name) + " " + in() + " (first at line " +
                          std::to_string(d.first_line) + ")");
    for (const Entry& e : entries_) {
      if (e.used || has_asked(e.name)) continue;
      std::string msg = "unknown key " + quote(e.name) + " " + in();
      std::string_view best;
      size_t best_distance = 3;
      for (const auto& known : asked_) {
        size_t d = edit_distance(e.name, known);
        if (d < best_distance && d < e.name.size()) {
          best = known;
          best_distance = d;
        }
      }
      if (!best.empty()) msg += " (did you mean " + quote(best) + "?)";
      l_->error(pos_of(e.key), msg);
    }
  }

 private:
  struct Entry {
    std::string name;
    YAML::Node key;  // for its position
    YAML::Node value;
    bool used = false;
  };
  struct Duplicate {
    std::string name;
    Pos at;
    int first_line;
  };

  Entry* find(std::string_view key) {
    for (Entry& e : entries_)
      if (e.name == key) return &e;
    return nullptr;
  }
  const Entry* find(std::string_view key) const {
    for (const Entry& e : entries_)
      if (e.name == key) return &e;
    return nullptr;
  }
  bool has_asked(std::string_view key) const {
    return std::find(asked_.begin(), asked_.end(), key) != asked_.end();
  }

  std::string subject() const { return what_.empty() ? "the top level" : what_; }

  Loader* l_;
  YAML::Node node_;
  Pos pos_;
  std::string what_;
  bool ok_ = false;
  bool finished_ = false;
  std::vector<Entry> entries_;
  std::vector<Duplicate> duplicates_;
  std::vector<std::string> asked_;
};


// ---------------------------------------------------------------------------

constexpr const char* kNameHint = " (use letters, digits, '-', '_', '.', ':'; at most 64)";
constexpr const char* kTokenHint = " (RFC 6265: letters, digits and !#$%&'*+-.^_`|~)";

bool is_unspecified(const IpAddress& a) {
  return std::all_of(a.bytes.begin(), a.bytes.begin() + (a.v6 ? 16 : 4), [](uint8_t b) { return b == 0; });
}

// Visible ASCII only: these values go verbatim into request lines and headers.
bool visible_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// "200" or "200-399", each 100..599.
std::optional<std::pair<uint16_t, uint16_t>> parse_status_range(std::string_view s) {
  const auto dash = s.find('-');
  const std::string_view lo_text = s.substr(0, dash);
  const std::string_view hi_text = dash == std::string_view::npos ? lo_text : s.substr(dash + 1);
  if (lo_text.size() != 3 || hi_text.size() != 3) return std::nullopt;
  auto lo = parse_digits(lo_text);
  auto hi = parse_digits(hi_text);
  if (!lo || !hi || *lo < 100 || *hi > 599 || *lo > *hi) return std::nullopt;
  return std::pair{static_cast<uint16_t>(*lo), static_cast<uint16_t>(*hi)};
}

std::optional<std::string> Loader::read_small_file(const std::string& path, std::string& why,
                                                   size_t max_bytes) {
  // Regular files only: a FIFO or a device named by mistake would block the
  // load or never end it.
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec) {
    why = ec.message();
    return std::nullopt;
  }
  if (!fs::is_regular_file(st)) {
    why = "not a regular file";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = std::strerror(errno);
    return std::nullopt;
  }
  std::string data(max_bytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.bad()) {
    why = "read error";
    return std::nullopt;
  }
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > max_bytes) {
    why = "larger than " + std::to_string(max_bytes) + " bytes";
    return std::nullopt;
  }
  return data;
}

std::optional<Pos> Loader::seen_before(std::vector<Seen>& seen, const std::string& name, Pos at) {
  for (const Seen& s : seen)
    if (s.name == name) return s.at;
  seen.push_back({name, at});
  return std::nullopt;
}

void Loader::note_bind(const Endpoint& ep, const std::string& owner, Pos at) {
  if (ep.port == 0) return;  // every port-0 bind gets a port of its own
  // With SO_REUSEPORT an overlapping second bind succeeds and silently
  // shares the port's traffic, so overlaps are refused here, wildcards
  // included.
  for (const BindUse& b : binds_) {
    if (b.endpoint.port != ep.port || b.endpoint.ip.v6 != ep.ip.v6) continue;
    if (b.endpoint.ip == ep.ip || is_unspecified(b.endpoint.ip) || is_unspecified(ep.ip)) {
      error(at, "'bind': " + ep.to_string() + " is already used by " + b.owner + " (" + b.endpoint.to_string() +
                    " at line " + std::to_string(b.at.line) + ")");
      return;
    }
  }
  binds_.push_back({ep, owner, at});
}

// Finds where each document and its root start, for at most a few documents.
//
// yaml-cpp 0.7's LoadAll never returns when its parser stops consuming input
// (a stray ',' at the top level makes it add empty documents until memory
// runs out: jbeder/yaml-cpp#1040, fixed upstream after 0.7). So the tree is
// built with Load (first document only), and this capped event pass counts
// documents and recognises the stuck parser by two roots at one offset.
class DocumentRoots : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;  // the "---" when there is one
  std::vector<YAML::Mark> roots;

  void OnDocumentStart(const YAML::Mark& m) override {
    starts.push_back(m);
    want_root_ = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { root(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { root(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { root(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    root(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    root(m);
  }
  void OnMapEnd() override {}

 private:
  void root(const YAML::Mark& m) {
    if (want_root_) roots.push_back(m);
    want_root_ = false;
  }
  bool want_root_ = false;
};

LoadResult Loader::run(std::string_view yaml) {
  auto cfg = std::make_shared<GatewayConfig>();
  cfg->source_path = file_;
  const std::string text(yaml);
  YAML::Node root;
  bool parsed = false;
  try {
    root = YAML::Load(text);
    parsed = true;
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentRoots docs;
    for (int n = 0; n < 3 && parser.HandleNextDocument(docs); ++n) {
    }
    const auto& r = docs.roots;
    for (size_t i = 1; i < r.size() && parsed; ++i) {
      if (r[i].pos != r[i - 1].pos) continue;
      const auto at = static_cast<size_t>(r[i].pos);
      error({r[i].line + 1, r[i].column + 1},
            "YAML syntax error: unexpected " + (at < text.size() ? quote(text.substr(at, 1)) : std::string("end")));
      parsed = false;
    }
    if (parsed && docs.starts.size() > 1) {
      const YAML::Mark& m = docs.starts[1];
      error({m.line + 1, m.column + 1}, "only one YAML document is allowed (remove the '---')");
    }
  } catch (const YAML::Exception& e) {
    error(e.mark.line < 0 ? Pos{} : Pos{e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg);
    parsed = false;
  } catch (const std::exception& e) {
    error({}, std::string("cannot parse the YAML: ") + e.what());
    parsed = false;
  }
  if (parsed) {
    if (root.IsNull()) {
      error({1, 1}, "the configuration is empty: at least one listener and one backend are required");
    } else {
      try {
        load_root(root, *cfg);
      } catch (const std::exception& e) {
        // A bug of ours, not of the file; still no exception leaves the loader.
        error({}, std::string("internal error while reading the configuration: ") + e.what());
      }
    }
  }
  auto by_position = [](const ConfigError& a, const ConfigError& b) {
    return std::pair{a.line, a.column} < std::pair{b.line, b.column};
  };
  std::stable_sort(errors_.begin(), errors_.end(), by_position);
  LoadResult result;
  result.errors = std::move(errors_);
  if (result.errors.empty()) result.config = std::move(cfg);
  return result;
}

void Loader::load_root(const YAML::Node& root, GatewayConfig& cfg) {
  Reader r(*this, root, {1, 1}, "");
  if (!r.ok()) return;
  load_workers(r, cfg);

  auto listeners = r.list("listeners");
  if (!r.has("listeners"))
    r.missing("listeners", " (at least one listener is required)");
  else if (listeners && listeners->empty())
    error(r.at("listeners"), "'listeners': at least one listener is required");
  if (listeners)
    for (size_t i = 0; i < listeners->size(); ++i) load_listener((*listeners)[i], i, cfg);

  auto backends = r.list("backends");
  if (!r.has("backends"))
    r.missing("backends", " (at least one backend is required)");
  else if (backends && backends->empty())
    error(r.at("backends"), "'backends': at least one backend is required");
  if (backends)
    for (size_t i = 0; i < backends->size(); ++i) load_backend((*backends)[i], i, cfg);

  load_forwarded(r, cfg.forwarded);
  load_affinity_store(r, cfg.affinity_store);
  load_limits(r, cfg.limits);
  load_timeouts(r, cfg.timeouts);
  load_admin(r, cfg.admin);
  load_access_log(r, cfg.access_log);

  // References can point forward, so they are checked once all is read.
  std::string defined;
  for (const Seen& b : backend_names_) defined += (defined.empty() ? "" : ", ") + b.name;
  for (const BackendRef& ref : backend_refs_) {
    if (cfg.find_backend(ref.name)) continue;
    error(ref.at, "'backend': no backend named " + quote(ref.name) +
                      (defined.empty() ? std::string() : " (defined: " + defined + ")"));
  }
}

void Loader::load_workers(Reader& r, GatewayConfig& cfg) {
  auto s = r.scalar("workers", "auto or a number from 1 to 1024");
  if (!s) return;
  if (*s == "auto") {
    cfg.workers = 0;
    return;
  }
  auto v = parse_digits(*s);
  if (!v || *v < 1 || *v > 1024) {
    error(r.at("workers"), "'workers': expected auto or a number from 1 to 1024, got " + quote(*s));
    return;
  }
  cfg.workers = static_cast<uint32_t>(*v);
}

void Loader::load_listener(const YAML::Node& n, size_t index, GatewayConfig& cfg) {
  Reader r(*this, n, pos_of(n), "listener #" + std::to_string(index + 1));
  if (!r.ok()) return;
  ListenerConfig l;
  if (auto name = r.required("name")) {
    if (!valid_name(*name)) error(r.at("name"), "'name': " + quote(*name) + " is not a valid name" + kNameHint);
    if (auto first = seen_before(listener_names_, *name, r.at("name")))
      error(r.at("name"), "duplicate listener name " + quote(*name) + " (first at line " +
                              std::to_string(first->line) + ")");
    l.name = *name;
    r.rename("listener " + quote(*name));
  }
  if (auto bind = r.required("bind")) {
    l.bind = *bind;
    if (auto ep = Endpoint::parse(*bind, /*allow_port_zero=*/true)) {
      l.endpoint = *ep;
      note_bind(*ep, r.what(), r.at("bind"));
    } else {
      error(r.at("bind"), "'bind': bad address " + quote(*bind) + " (use e.g. 0.0.0.0:8443 or [::]:8443)");
    }
  }
  if (r.has("tls")) l.tls = load_tls(r);

  const bool has_backend = r.has("backend");
  if (has_backend) {
    if (auto b = r.required("backend")) {
      l.backend = *b;
      backend_refs_.push_back({*b, r.at("backend")});
    }
  }
  bool has_routes = false;
  if (auto routes = r.list("routes")) {
    has_routes = !routes->empty();
    for (size_t k = 0; k < routes->size(); ++k) {
      Reader rr(*this, (*routes)[k], pos_of((*routes)[k]), "route #" + std::to_string(k + 1) + " of " + r.what());
      if (!rr.ok()) continue;
      RouteConfig route;
      if (rr.read("host", route.host) && !visible_ascii(route.host))
        error(rr.at("host"), "'host': " + quote(route.host) + " is not a valid host name");
      if (rr.read("path_prefix", route.path_prefix) && !route.path_prefix.empty() &&
          (route.path_prefix[0] != '/' || !visible_ascii(route.path_prefix)))
        error(rr.at("path_prefix"), "'path_prefix': must start with '/' and hold no spaces, got " +
                                        quote(route.path_prefix));
      if (auto b = rr.required("backend")) {
        route.backend = *b;
        backend_refs_.push_back({*b, rr.at("backend")});
      }
      l.routes.push_back(std::move(route));
    }
  } else if (r.has("routes")) {
    has_routes = true;  // malformed, already reported
  }

  if (r.has("redirect_https")) {
    uint16_t port = 0;
    if (r.read_uint("redirect_https", port, 1, 65535)) l.redirect_https = port;
    if (r.has("tls"))
      error(r.at("redirect_https"), "'redirect_https': only a listener without 'tls' can redirect to https");
    else if (has_backend || has_routes)
      error(r.at("redirect_https"),
            "'redirect_https': a redirecting listener proxies nothing; remove 'backend'/'routes' or 'redirect_https'");
  } else if (!has_backend && !has_routes) {
    error(r.pos(), r.what() + " has nothing to do: give it 'backend', 'routes' or 'redirect_https'");
  }
  cfg.listeners.push_back(std::move(l));
}

std::optional<TlsConfig> Loader::load_tls(Reader& parent) {
  Reader r = parent.child("tls", "'tls' of " + parent.what());
  TlsConfig t;
  if (!r.ok()) return t;  // still a TLS listener, so no misleading follow-up errors

  const YAML::Node* certs = r.get("certificates");
  if (!certs) {
    r.missing("certificates", " (a directory, or a list of {cert, key})");
  } else if (certs->IsScalar()) {
    if (certs->Scalar().empty()) {
      error(r.at("certificates"), "'certificates' must not be empty");
    } else {
      t.certificates_dir = resolve(certs->Scalar());
      std::error_code ec;
      const auto st = fs::status(t.certificates_dir, ec);
      if (!fs::exists(st))
        error(r.at("certificates"), "'certificates': directory " + quote_path(t.certificates_dir) + " does not exist");
      else if (!fs::is_directory(st))
        error(r.at("certificates"), "'certificates': " + quote_path(t.certificates_dir) +
                                        " is not a directory (give a directory, or a list of {cert, key})");
    }
  } else if (certs->IsSequence()) {
    if (certs->size() == 0)
      error(r.at("certificates"), "'certificates': the list is empty (give at least one {cert, key})");
    size_t k = 0;
    for (const auto& item : *certs) {
      Reader cr(*this, item, pos_of(item), "certificate #" + std::to_string(++k) + " of " + parent.what());
      if (!cr.ok()) continue;
      TlsCertificateFiles files;
      for (auto [key, out] : {std::pair{"cert", &files.cert}, std::pair{"key", &files.key}}) {
        auto written = cr.required(key);
        if (!written) continue;
        *out = resolve(*written);
        std::error_code ec;
        const auto st = fs::status(*out, ec);
        if (!fs::exists(st))
          error(cr.at(key), quote(key) + ": file " + quote_path(*out) + " does not exist");
        else if (!fs::is_regular_file(st))
          error(cr.at(key), quote(key) + ": " + quote_path(*out) + " is not a regular file");
      }
      t.certificate_files.push_back(std::move(files));
    }
  } else {
    error(r.at("certificates"),
          "'certificates': expected a directory or a list of {cert, key}, got " + std::string(kind_of(*certs)));
  }

  if (auto alpn = r.list("alpn")) {
    t.alpn.clear();
    if (alpn->empty()) error(r.at("alpn"), "'alpn': give at least one protocol (h2, http/1.1)");
    for (const auto& item : *alpn) {
      const std::string p = item.IsScalar() ? item.Scalar() : std::string();
      if (p != "h2" && p != "http/1.1")
        error(pos_of(item), "'alpn': unknown protocol " + (item.IsScalar() ? quote(p) : std::string(kind_of(item))) +
                                " (use h2, http/1.1)");
      else if (std::find(t.alpn.begin(), t.alpn.end(), p) != t.alpn.end())
        error(pos_of(item), "'alpn': " + quote(p) + " is listed twice");
      else
        t.alpn.push_back(p);
    }
  }
  r.read_enum("min_version", t.min_version, {{"TLSv1.2", 0x0303}, {"TLSv1.3", 0x0304}});
  r.read("session_tickets", t.session_tickets);
  return t;
}

void Loader::load_backend(const YAML::Node& n, size_t index, GatewayConfig& cfg) {
  Reader r(*this, n, pos_of(n), "backend #" + std::to_string(index + 1));
  if (!r.ok()) return;
  BackendConfig b;
  if (auto name = r.required("name")) {
    if (!valid_name(*name)) error(r.at("name"), "'name': " + quote(*name) + " is not a valid name" + kNameHint);
    if (auto first = seen_before(backend_names_, *name, r.at("name")))
      error(r.at("name"), "duplicate backend name " + quote(*name) + " (first at line " +
                              std::to_string(first->line) + ")");
    b.name = *name;
    r.rename("backend " + quote(*name));
  }

  using B = BalanceAlgorithm;
  r.read_enum("balance", b.balance,
                  {{"roundrobin", B::kRoundRobin},
                   {"leastconn", B::kLeastConn},
                   {"least_time", B::kLeastTime},
                   {"source", B::kSource},
                   {"hash", B::kHash},
                   {"random", B::kRandom}});
  if (r.read("hash_key", b.hash_key) && !valid_hash_key(b.hash_key))
    error(r.at("hash_key"), "'hash_key': bad key " + quote(b.hash_key) + " (use header:NAME, cookie:NAME, path or source)");
  if (b.balance == B::kHash && !r.has("hash_key"))
    error(r.at("balance"), "'balance: hash' needs 'hash_key' (header:NAME, cookie:NAME, path or source) " + r.in());

  auto servers = r.list("servers");
  if (!r.has("servers"))
    r.missing("servers", " (a backend needs at least one server)");
  else if (servers && servers->empty())
    error(r.at("servers"), "'servers': " + r.what() + " has no servers");
  if (servers) {
    std::vector<Seen> names;
    for (size_t k = 0; k < servers->size(); ++k) {
      const YAML::Node& item = (*servers)[k];
      Reader sr(*this, item, pos_of(item), "server #" + std::to_string(k + 1) + " of " + r.what());
      if (!sr.ok()) continue;
      ServerConfig s;
      if (auto name = sr.required("name")) {
        if (!valid_name(*name)) error(sr.at("name"), "'name': " + quote(*name) + " is not a valid name" + kNameHint);
        if (auto first = seen_before(names, *name, sr.at("name")))
          error(sr.at("name"), "duplicate server name " + quote(*name) + " " + r.in() + " (first at line " +
                                   std::to_string(first->line) + ")");
        s.name = *name;
        sr.rename("server " + quote(*name) + " of " + r.what());
      }
      if (auto address = sr.required("address")) {
        s.address = *address;
        if (auto ep = Endpoint::parse(*address))
          s.endpoint = *ep;
        else
          error(sr.at("address"), "'address': bad address " + quote(*address) +
                                      " (use e.g. 127.0.0.1:9001 or [::1]:9001, port 1..65535; names other "
                                      "than localhost are not resolved)");
      }
      sr.read_uint("weight", s.weight, 0, 1000);
      sr.read("backup", s.backup);
      b.servers.push_back(std::move(s));
    }
  }

  if (r.has("health_check")) {
    load_health_check(r, b.health_check);
  }
  if (r.has("passive")) {
    Reader p = r.child("passive", "'passive' of " + r.what());
    PassiveConfig pc;
    if (p.ok()) {
      p.read_uint("consecutive_failures", pc.consecutive_failures, 1, 1000000);
      p.read_positive("eject_for", pc.eject_for);
    }
    b.passive = pc;
  }
  r.read("slow_start", b.slow_start);
  if (r.has("persistence")) b.persistence = load_persistence(r);
  r.read("redispatch", b.redispatch);
  r.read_uint("retries", b.retries, 0, 10);
  if (r.has("timeouts")) {
    Reader t = r.child("timeouts", "'timeouts' of " + r.what());
    if (t.ok()) {
      t.read_positive("connect", b.connect_timeout);
      t.read_positive("server", b.server_timeout);
    }
  }
  if (r.has("pool")) {
    Reader p = r.child("pool", "'pool' of " + r.what());
    if (p.ok()) {
      p.read_uint("max_idle_per_server", b.pool.max_idle_per_server, 0, 100000);
      p.read_positive("idle_timeout", b.pool.idle_timeout);
    }
  }
  cfg.backends.push_back(std::move(b));
}

void Loader::load_health_check(Reader& parent, HealthCheckConfig& hc) {
  Reader r = parent.child("health_check", "'health_check' of " + parent.what());
  if (!r.ok()) return;
  using H = HealthCheckType;
  r.read_enum("type", hc.type, {{"http", H::kHttp}, {"tcp", H::kTcp}, {"none", H::kNone}});
  if (r.read("path", hc.path) && (hc.path.empty() || hc.path[0] != '/' || !visible_ascii(hc.path)))
    error(r.at("path"), "'path': must start with '/' and hold no spaces, got " + quote(hc.path));
  if (r.read("host", hc.host) && !visible_ascii(hc.host))
    error(r.at("host"), "'host': " + quote(hc.host) + " is not a valid host name");
  if (auto s = r.scalar("expect_status", "a status like 200 or 200-399")) {
    if (auto range = parse_status_range(*s)) {
      hc.expect_status_min = range->first;
      hc.expect_status_max = range->second;
    } else {
      error(r.at("expect_status"), "'expect_status': bad status " + quote(*s) +
                                       " (use NNN or NNN-NNN, from 100 to 599, e.g. \"200-399\")");
    }
  }
  r.read_positive("interval", hc.interval);
  r.read_positive("timeout", hc.timeout);
  r.read_uint("rise", hc.rise, 1, 1000);
  r.read_uint("fall", hc.fall, 1, 1000);
}

PersistenceConfig Loader::load_persistence(Reader& parent) {
  Reader r = parent.child("persistence", "'persistence' of " + parent.what());
  PersistenceConfig p;
  if (!r.ok()) return p;
  p.cookie.reset();  // a written section holds exactly what it says
  if (r.has("cookie")) p.cookie = load_cookie(r, parent.what());
  if (r.has("learn")) {
    Reader l = r.child("learn", "'persistence.learn' of " + parent.what());
    LearnConfig lc;
    if (l.ok()) {
      if (auto c = l.required("cookie")) {
        if (!valid_token(*c)) error(l.at("cookie"), "'cookie': " + quote(*c) + " is not a valid cookie name" + kTokenHint);
        lc.cookie = *c;
      }
      l.read_positive("ttl", lc.ttl);
    }
    p.learn = lc;
  }
  if (r.has("source")) {
    Reader s = r.child("source", "'persistence.source' of " + parent.what());
    SourceConfig sc;
    if (s.ok()) {
      s.read_uint("ipv4_mask", sc.ipv4_mask, 0, 32);
      s.read_uint("ipv6_mask", sc.ipv6_mask, 0, 128);
      s.read_positive("ttl", sc.ttl);
    }
    p.source = sc;
  }
  return p;
}

CookieConfig Loader::load_cookie(Reader& persistence, const std::string& owner) {
  Reader r = persistence.child("cookie", "'persistence.cookie' of " + owner);
  CookieConfig c;
  if (!r.ok()) return c;
  if (r.read("name", c.name) && !valid_token(c.name))
    error(r.at("name"), "'name': " + quote(c.name) + " is not a valid cookie name" + kTokenHint);
  using M = CookieMode;
  r.read_enum("mode", c.mode, {{"insert", M::kInsert}, {"rewrite", M::kRewrite}, {"prefix", M::kPrefix}});
  if (r.read("app_cookie", c.app_cookie) && !c.app_cookie.empty() && !valid_token(c.app_cookie))
    error(r.at("app_cookie"), "'app_cookie': " + quote(c.app_cookie) + " is not a valid cookie name" + kTokenHint);
  if (c.mode == M::kPrefix && c.app_cookie.empty())
    error(r.at("mode"), "'mode: prefix' needs 'app_cookie' (the server's own session cookie) " + r.in());
  if (r.read("path", c.path) && (c.path.empty() || c.path[0] != '/' || !valid_attribute_value(c.path)))
    error(r.at("path"), "'path': must start with '/' and hold no spaces, ';', ',' or control characters");
  if (r.read("domain", c.domain) && !valid_attribute_value(c.domain))
    error(r.at("domain"), "'domain': must hold no spaces, ';', ',' or control characters");
  r.read_enum("secure", c.secure, {{"auto", SecureFlag::kAuto}, {"true", SecureFlag::kOn}, {"false", SecureFlag::kOff}});
  r.read("http_only", c.http_only);
  r.read_enum("same_site", c.same_site, {{"Lax", SameSite::kLax}, {"Strict", SameSite::kStrict}, {"None", SameSite::kNone}});
  if (c.same_site == SameSite::kNone && c.secure == SecureFlag::kOff)
    error(r.at("same_site"), "'same_site: None' needs a secure cookie (browsers drop SameSite=None without "
                             "Secure): set secure to auto or true");
  r.read("max_age", c.max_age);
  r.read("max_idle", c.max_idle);
  r.read("max_life", c.max_life);
  if (r.read("secret_file", c.secret_file) && !c.secret_file.empty()) {
    const std::string path = resolve(c.secret_file);
    std::string why;
    if (auto text = read_small_file(path, why, 1 << 20)) {
      std::string_view rest = *text;
      while (!rest.empty()) {
        const size_t eol = rest.find('\n');
        std::string_view line = rest.substr(0, eol);
        rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
        while (!line.empty() && std::strchr(" \t\r\f\v", line.back()) != nullptr) line.remove_suffix(1);
        if (!line.empty()) c.secrets.emplace_back(line);
      }
      if (c.secrets.empty())
        error(r.at("secret_file"), "'secret_file': " + quote_path(path) + " holds no secret (one a line)");
    } else {
      error(r.at("secret_file"), "'secret_file': cannot read " + quote_path(path) + ": " + why);
    }
  }
  return c;
}

void Loader::load_password(Reader& r, std::string& file, std::string& password, const char* key) {
  if (!r.read(key, file) || file.empty()) return;
  const std::string path = resolve(file);
  const std::string what = std::string("'") + key + "': ";
  std::string why;
  auto text = read_small_file(path, why, 64 * 1024);
  if (!text) {
    error(r.at(key), what + "cannot read " + quote_path(path) + ": " + why);
    return;
  }
  password = text->substr(0, text->find('\n'));
  if (!password.empty() && password.back() == '\r') password.pop_back();
  // An empty password would quietly mean "no auth" where auth was asked for
  // (an empty secret, "no secret").
  if (password.empty()) error(r.at(key), what + "the first line of " + quote_path(path) + " is empty");
}

void Loader::load_forwarded(Reader& parent, ForwardedConfig& f) {
  if (!parent.has("forwarded")) return;
  Reader r = parent.child("forwarded", "'forwarded'");
  if (!r.ok()) return;
  if (auto items = r.list("trusted_proxies")) {
    for (const auto& item : *items) {
      std::optional<Cidr> cidr;
      if (item.IsScalar()) cidr = Cidr::parse(item.Scalar());
      if (cidr)
        f.trusted_proxies.push_back(*cidr);
      else
        error(pos_of(item), "'trusted_proxies': bad address or CIDR " +
                                (item.IsScalar() ? quote(item.Scalar()) : std::string(kind_of(item))) +
                                " (use e.g. 10.0.0.0/8, 192.0.2.7 or fd00::/8)");
    }
  }
  r.read("x_forwarded_for", f.x_forwarded_for);
  r.read("x_forwarded_proto", f.x_forwarded_proto);
  r.read("x_forwarded_host", f.x_forwarded_host);
  r.read("forwarded", f.forwarded);
}

void Loader::load_affinity_store(Reader& parent, AffinityStoreConfig& s) {
  if (!parent.has("affinity_store")) return;
  Reader r = parent.child("affinity_store", "'affinity_store'");
  if (!r.ok()) return;
  r.read_enum("type", s.type, {{"memory", StoreType::kMemory}, {"redis", StoreType::kRedis}});
  r.read_uint("capacity", s.capacity, 1, uint64_t{1} << 40);
  if (!r.has("redis")) return;

  Reader rr = r.child("redis", "'affinity_store.redis'");
  if (!rr.ok()) return;
  RedisConfig& c = s.redis;
  if (rr.read("address", c.address) && !Endpoint::parse(c.address))
    error(rr.at("address"), "'address': bad address " + quote(c.address) + " (use e.g. 127.0.0.1:6379)");
  if (rr.has("sentinel")) {
    if (rr.has("address"))
      error(rr.key_at("sentinel"), "'sentinel': give either 'address' or 'sentinel', not both");
    Reader sr = rr.child("sentinel", "'affinity_store.redis.sentinel'");
    if (sr.ok()) {
      if (auto items = sr.list("addresses")) {
        if (items->empty()) error(sr.at("addresses"), "'addresses': give at least one sentinel address");
        for (const auto& item : *items) {
          if (item.IsScalar() && Endpoint::parse(item.Scalar()))
            c.sentinel_addresses.push_back(item.Scalar());
          else
            error(pos_of(item), "'addresses': bad address " +
                                    (item.IsScalar() ? quote(item.Scalar()) : std::string(kind_of(item))) +
                                    " (use e.g. 127.0.0.1:26379)");
        }
      } else if (!sr.has("addresses")) {
        sr.missing("addresses");
      }
      if (auto m = sr.required("master")) c.sentinel_master = *m;
    }
  }
  load_password(rr, c.password_file, c.password);
  rr.read("key_prefix", c.key_prefix);
  load_password(rr, c.key_secret_file, c.key_secret, "key_secret_file");
  rr.read_uint("db", c.db, 0, 2147483647);
  rr.read_positive("timeout", c.timeout);
}

void Loader::load_limits(Reader& parent, LimitsConfig& l) {
  if (!parent.has("limits")) return;
  Reader r = parent.child("limits", "'limits'");
  if (!r.ok()) return;
  r.read_uint("max_connections", l.max_connections, 1, 100000000);
  r.read_size("max_header_bytes", l.max_header_bytes, 1);
  r.read_uint("max_headers", l.max_headers, 1, 100000);
  r.read_size("max_request_line", l.max_request_line, 1);
  r.read_size("max_body", l.max_body);
  r.read_uint("h2_max_concurrent_streams", l.h2_max_concurrent_streams, 1, 2147483647);
}

void Loader::load_timeouts(Reader& parent, TimeoutsConfig& t) {
  if (!parent.has("timeouts")) return;
  Reader r = parent.child("timeouts", "'timeouts'");
  if (!r.ok()) return;
  r.read_positive("client", t.client);
  r.read_positive("http_request", t.http_request);
  r.read_positive("keepalive", t.keepalive);
  r.read("shutdown", t.shutdown);  // 0 = stop at once
}

void Loader::load_admin(Reader& parent, std::optional<AdminConfig>& admin) {
  if (!parent.has("admin")) return;
  Reader r = parent.child("admin", "'admin'");
  if (!r.ok()) return;
  AdminConfig a;
  if (auto bind = r.required("bind")) {
    a.bind = *bind;
    if (auto ep = Endpoint::parse(*bind, /*allow_port_zero=*/true)) {
      a.endpoint = *ep;
      note_bind(*ep, "the admin listener", r.at("bind"));
    } else {
      error(r.at("bind"), "'bind': bad address " + quote(*bind) + " (use e.g. 127.0.0.1:9901)");
    }
  }
  if (r.has("auth")) {
    Reader ar = r.child("auth", "'admin.auth'");
    if (ar.ok()) {
      if (ar.read("user", a.user) && a.user.find(':') != std::string::npos)
        error(ar.at("user"), "'user': must not contain ':' (basic auth splits on it)");
      load_password(ar, a.password_file, a.password);
      if (!a.password_file.empty() && a.user.empty())
        error(ar.has("user") ? ar.at("user") : ar.pos(), "'user' is required " + ar.in() + " when 'password_file' is set");
    }
  }
  admin = std::move(a);
}

void Loader::load_access_log(Reader& parent, AccessLogConfig& a) {
  if (!parent.has("access_log")) return;
  Reader r = parent.child("access_log", "'access_log'");
  if (!r.ok()) return;
  r.read("path", a.path);
  r.read_enum("format", a.format, {{"text", LogFormat::kText}, {"json", LogFormat::kJson}});
}

}  // namespace

LoadResult ConfigLoader::load_string(std::string_view yaml, const std::string& name, const std::string& base_dir) {
  try {
    return Loader(name, base_dir).run(yaml);
  } catch (...) {  // bad_alloc and the like: still an answer, never an exception
    LoadResult r;
    r.errors.push_back({name, 0, 0, "internal error while loading the configuration"});
    return r;
  }
}

LoadResult ConfigLoader::load_file(const std::string& path) {
  std::string why;
  auto text = Loader::read_small_file(path, why, 16 << 20);
  if (!text) {
    LoadResult r;
    r.errors.push_back({path, 0, 0, "cannot read the configuration: " + why});
    return r;
  }
  return load_string(*text, path, fs::path(path).parent_path().string());
}

}  // namespace sag::config
