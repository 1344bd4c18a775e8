#include "gateway/admin/server_patch.h"

#include "config/base/json_reader.h"

namespace sag::gateway::admin {
namespace {

using base::JsonReader;

// For error messages: a client-supplied key, bounded.
std::string quoted_key(const std::string& k) {
  return "'" + (k.size() > 40 ? k.substr(0, 40) + "..." : k) + "'";
}

std::string weight_range_error() {
  return "'weight' must be an integer from 0 to " + std::to_string(affinity::kMaxWeight);
}

// At the value of "state".
bool read_state(JsonReader& r, ServerPatch& patch, std::string& error) {
  if (patch.state) {
    error = "duplicate key 'state'";
    return false;
  }
  if (r.peek() != '"') {
    error = "'state' must be a string: ready, drain or maint";
    return false;
  }
  std::string text;
  if (!r.string(text)) {
    error = "invalid JSON: bad string";
    return false;
  }
  patch.state = affinity::parse_admin_state(text);
  if (!patch.state) {
    error = "'state' must be ready, drain or maint";
    return false;
  }
  return true;
}

// At the value of "weight".
bool read_weight(JsonReader& r, ServerPatch& patch, std::string& error) {
  if (patch.weight) {
    error = "duplicate key 'weight'";
    return false;
  }
  const char c = r.peek();
  if (c != '-' && !(c >= '0' && c <= '9')) {
    error = weight_range_error();
    return false;
  }
  uint64_t v;
  bool negative;
  switch (r.number(v, negative)) {
    case JsonReader::Number::kMalformed:
      error = "invalid JSON: bad number";
      return false;
    case JsonReader::Number::kNotInteger:
      error = weight_range_error();
      return false;
    case JsonReader::Number::kInteger:
      break;
  }
  if ((negative && v != 0) || v > affinity::kMaxWeight) {
    error = weight_range_error();
    return false;
  }
  patch.weight = static_cast<uint32_t>(v);
  return true;
}

// At a key: the key, ':' and its value.
bool read_member(JsonReader& r, ServerPatch& patch, std::string& error) {
  std::string key;
  if (r.peek() != '"') {
    error = "invalid JSON: expected a key in double quotes";
    return false;
  }
  if (!r.string(key)) {
    error = "invalid JSON: bad string";
    return false;
  }
  r.skip_ws();
  if (!r.eat(':')) {
    error = "invalid JSON: expected ':' after " + quoted_key(key);
    return false;
  }
  r.skip_ws();
  if (key == "state") return read_state(r, patch, error);
  if (key == "weight") return read_weight(r, patch, error);
  error = "unknown key " + quoted_key(key) + " (allowed: state, weight)";
  return false;
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
  for (bool first = true;; first = false) {
    if (first && r.eat('}')) break;
    if (!read_member(r, patch, error)) return std::nullopt;
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

}  // namespace sag::gateway::admin
