// Typed access to one YAML map, with positions and unknown-key detection.
//
// A YamlReader hands out values by key, remembers which keys were asked for,
// and, when it goes out of scope, reports every key nobody asked for as
// unknown (with a suggestion when a known key is close) and every key given
// twice. Getters return true only when the key is present and its value
// valid (then `out` is set); otherwise `out` keeps its default and any
// problem is already in the ErrorLog at the value's position. Nothing here
// knows the gateway's schema.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "config/config_error.h"
#include "config/units.h"

namespace sag::config {

// The 1-based position of a node; {0, 0} when it has none.
Pos pos_of(const YAML::Node& n);

// Values echoed into messages: quoted, control characters escaped so every
// error stays one line, and runaway values cut at 80 bytes (a mangled file
// can make a whole section one key). Paths are never cut.
std::string quote(std::string_view s);
std::string quote_path(std::string_view s);

// "a map", "a list", "nothing" or "a value", for "expected X, got Y".
const char* kind_of(const YAML::Node& n);

template <typename E>
using Choices = std::initializer_list<std::pair<std::string_view, E>>;

// "a, b, c" for "use a, b, c".
template <typename E>
std::string list_choices(Choices<E> table) {
  std::string s;
  for (const auto& [name, value] : table) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

class YamlReader {
 public:
  // `what` names the map in messages ("backend 'app'"; empty for the top
  // level). `fallback` is where to point when `node` is empty (a YAML null
  // carries the position of whatever token follows it, often on the next
  // line). A node that is neither a map nor empty is reported; ok() is then
  // false and every getter finds nothing.
  YamlReader(ErrorLog& log, const YAML::Node& node, Pos fallback, std::string what);
  YamlReader(YamlReader&& o) noexcept;
  YamlReader& operator=(YamlReader&&) = delete;
  ~YamlReader() { finish(); }

  bool ok() const { return ok_; }
  Pos pos() const { return pos_; }
  const std::string& what() const { return what_; }
  void rename(std::string what) { what_ = std::move(what); }
  ErrorLog& log() { return *log_; }

  // "in backend 'app'", or "at the top level".
  std::string in() const { return what_.empty() ? "at the top level" : "in " + what_; }

  // Whether `key` is present; marks it as known (not as consumed).
  bool has(std::string_view key);
  // The value of `key`, marked as consumed; nullptr when absent.
  const YAML::Node* get(std::string_view key);

  // Position of the value (or of its key when the value is empty); the
  // map's own position when the key is absent.
  Pos at(std::string_view key) const;
  Pos key_at(std::string_view key) const;

  void missing(std::string_view key, std::string_view hint = {});

  // A child map; check ok() on the result. Absent keys give an empty reader.
  YamlReader child(std::string_view key, std::string what);

  // A list's items; nullopt when absent or not a list (the latter reported).
  // An empty value counts as an empty list.
  std::optional<std::vector<YAML::Node>> list(std::string_view key);

  // The scalar text of `key`; reports non-scalars. Empty values are refused
  // unless `empty_ok` (strings may be written as `key:` or `key: ""`).
  std::optional<std::string> scalar(std::string_view key, std::string_view expected, bool empty_ok = false);

  bool read(std::string_view key, std::string& out);
  // A string that must be there and not be empty.
  std::optional<std::string> required(std::string_view key);
  bool read(std::string_view key, bool& out);
  bool read(std::string_view key, std::chrono::milliseconds& out);
  // A duration that must not be 0 (timers that would fire at once, forever).
  bool read_positive(std::string_view key, std::chrono::milliseconds& out);
  bool read_size(std::string_view key, uint64_t& out, uint64_t min = 0);

  template <typename T>
  bool read_uint(std::string_view key, T& out, uint64_t min, uint64_t max) {
    auto v = read_uint64(key, min, max);
    if (!v) return false;
    out = static_cast<T>(*v);
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
    log_->error(at(key), quote(key) + ": unknown value " + quote(*s) + " (use " + list_choices(table) + ")");
    return false;
  }

  // Reports duplicate keys and the keys nobody asked for; runs once, at the
  // latest when the reader goes out of scope.
  void finish();

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

  std::optional<uint64_t> read_uint64(std::string_view key, uint64_t min, uint64_t max);
  Entry* find(std::string_view key);
  const Entry* find(std::string_view key) const;
  bool has_asked(std::string_view key) const;
  std::string subject() const { return what_.empty() ? "the top level" : what_; }

  ErrorLog* log_;
  YAML::Node node_;
  Pos pos_;
  std::string what_;
  bool ok_ = false;
  bool finished_ = false;
  std::vector<Entry> entries_;
  std::vector<Duplicate> duplicates_;
  std::vector<std::string> asked_;
};

}  // namespace sag::config
