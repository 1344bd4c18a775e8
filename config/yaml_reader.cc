#include "config/yaml_reader.h"

#include <algorithm>

#include "config/base/hex.h"

namespace sag::config {

namespace {

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
      out += "\\x";
      base::append_hex_byte(out, u);
    } else {
      out += c;
    }
  }
  if (n < s.size()) out += "...";
  return out + "'";
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

}  // namespace

Pos pos_of(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

std::string quote(std::string_view s) { return quote_escaped(s, 80); }
std::string quote_path(std::string_view s) { return quote_escaped(s, std::string_view::npos); }

const char* kind_of(const YAML::Node& n) {
  if (n.IsMap()) return "a map";
  if (n.IsSequence()) return "a list";
  if (n.IsNull()) return "nothing";
  return "a value";
}

YamlReader::YamlReader(ErrorLog& log, const YAML::Node& node, Pos fallback, std::string what)
    : log_(&log), node_(node), pos_(node.IsNull() ? fallback : pos_of(node)), what_(std::move(what)) {
  if (!node.IsNull() && !node.IsMap()) {
    log_->error(pos_, subject() + " must be a map (key: value), not " + kind_of(node));
    return;
  }
  ok_ = true;
  if (node.IsNull()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // Copies, not references: yaml-cpp's iterator hands out a temporary pair.
    const YAML::Node k = it->first;
    const YAML::Node v = it->second;
    if (!k.IsScalar()) {
      log_->error(pos_of(k), "keys must be plain names " + in());
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

YamlReader::YamlReader(YamlReader&& o) noexcept
    : log_(o.log_), node_(std::move(o.node_)), pos_(o.pos_), what_(std::move(o.what_)), ok_(o.ok_),
      finished_(o.finished_), entries_(std::move(o.entries_)), duplicates_(std::move(o.duplicates_)),
      asked_(std::move(o.asked_)) {
  o.finished_ = true;
}

bool YamlReader::has(std::string_view key) {
  asked_.emplace_back(key);
  return find(key) != nullptr;
}

const YAML::Node* YamlReader::get(std::string_view key) {
  asked_.emplace_back(key);
  Entry* e = find(key);
  if (!e) return nullptr;
  e->used = true;
  return &e->value;
}

Pos YamlReader::at(std::string_view key) const {
  const Entry* e = find(key);
  if (!e) return pos_;
  return e->value.IsNull() ? pos_of(e->key) : pos_of(e->value);
}

Pos YamlReader::key_at(std::string_view key) const {
  const Entry* e = find(key);
  return e ? pos_of(e->key) : pos_;
}

void YamlReader::missing(std::string_view key, std::string_view hint) {
  log_->error(pos_, "missing required key " + quote(key) + " " + in() + std::string(hint));
}

YamlReader YamlReader::child(std::string_view key, std::string what) {
  const YAML::Node* n = get(key);
  return YamlReader(*log_, n ? *n : YAML::Node(), at(key), std::move(what));
}

std::optional<std::vector<YAML::Node>> YamlReader::list(std::string_view key) {
  const YAML::Node* n = get(key);
  if (!n) return std::nullopt;
  std::vector<YAML::Node> items;
  if (n->IsNull()) return items;
  if (!n->IsSequence()) {
    log_->error(at(key), quote(key) + ": expected a list, got " + kind_of(*n));
    return std::nullopt;
  }
  for (const auto& item : *n) items.push_back(item);
  return items;
}

std::optional<std::string> YamlReader::scalar(std::string_view key, std::string_view expected, bool empty_ok) {
  const YAML::Node* n = get(key);
  if (!n) return std::nullopt;
  if (n->IsNull()) {
    if (empty_ok) return std::string();
    log_->error(at(key), quote(key) + ": missing value (expected " + std::string(expected) + ")");
    return std::nullopt;
  }
  if (!n->IsScalar()) {
    log_->error(at(key), quote(key) + ": expected " + std::string(expected) + ", got " + kind_of(*n));
    return std::nullopt;
  }
  return n->Scalar();
}

bool YamlReader::read(std::string_view key, std::string& out) {
  auto s = scalar(key, "a string", true);
  if (!s) return false;
  out = std::move(*s);
  return true;
}

std::optional<std::string> YamlReader::required(std::string_view key) {
  if (!has(key)) {
    missing(key);
    return std::nullopt;
  }
  auto s = scalar(key, "a string", true);
  if (s && s->empty()) {
    log_->error(at(key), quote(key) + " must not be empty");
    return std::nullopt;
  }
  return s;
}

bool YamlReader::read(std::string_view key, bool& out) {
  auto s = scalar(key, "true or false");
  if (!s) return false;
  if (*s == "true" || *s == "false") {
    out = *s == "true";
    return true;
  }
  log_->error(at(key), quote(key) + ": expected true or false, got " + quote(*s));
  return false;
}

std::optional<uint64_t> YamlReader::read_uint64(std::string_view key, uint64_t min, uint64_t max) {
  auto s = scalar(key, "a whole number");
  if (!s) return std::nullopt;
  auto v = parse_digits(*s);
  if (!v) {
    if (!s->empty() && s->front() == '-' && parse_digits(std::string_view(*s).substr(1)))
      log_->error(at(key), quote(key) + ": must not be negative, got " + *s);
    else if (leading_digits(*s) == s->size())
      log_->error(at(key), quote(key) + ": " + *s + " is out of range (" + std::to_string(min) + ".." +
                               std::to_string(max) + ")");
    else
      log_->error(at(key), quote(key) + ": expected a whole number, got " + quote(*s));
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    log_->error(at(key), quote(key) + ": " + *s + " is out of range (" + std::to_string(min) + ".." +
                             std::to_string(max) + ")");
    return std::nullopt;
  }
  return v;
}

bool YamlReader::read(std::string_view key, std::chrono::milliseconds& out) {
  auto s = scalar(key, "a duration");
  if (!s) return false;
  auto d = parse_duration(*s);
  if (!d) {
    log_->error(at(key), quote(key) + ": bad duration " + quote(*s) + " (use e.g. 250ms, 5s, 30m, 8h)");
    return false;
  }
  out = *d;
  return true;
}

bool YamlReader::read_positive(std::string_view key, std::chrono::milliseconds& out) {
  std::chrono::milliseconds d{};
  if (!read(key, d)) return false;
  if (d.count() == 0) {
    log_->error(at(key), quote(key) + ": must be more than 0");
    return false;
  }
  out = d;
  return true;
}

bool YamlReader::read_size(std::string_view key, uint64_t& out, uint64_t min) {
  auto s = scalar(key, "a size");
  if (!s) return false;
  auto v = parse_size(*s);
  if (!v) {
    log_->error(at(key), quote(key) + ": bad size " + quote(*s) + " (use e.g. 512, 16KiB, 1MiB, 1GiB)");
    return false;
  }
  if (*v < min) {
    log_->error(at(key), quote(key) + ": must be at least " + std::to_string(min) + " bytes");
    return false;
  }
  out = *v;
  return true;
}

void YamlReader::finish() {
  if (finished_ || !log_) return;
  finished_ = true;
  for (const Duplicate& d : duplicates_)
    log_->error(d.at, "duplicate key " + quote(d.name) + " " + in() + " (first at line " +
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
    log_->error(pos_of(e.key), msg);
  }
}

YamlReader::Entry* YamlReader::find(std::string_view key) {
  for (Entry& e : entries_)
    if (e.name == key) return &e;
  return nullptr;
}

const YamlReader::Entry* YamlReader::find(std::string_view key) const {
  for (const Entry& e : entries_)
    if (e.name == key) return &e;
  return nullptr;
}

bool YamlReader::has_asked(std::string_view key) const {
  return std::find(asked_.begin(), asked_.end(), key) != asked_.end();
}

}  // namespace sag::config
