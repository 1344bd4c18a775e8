// Checks that need more than one node of the document: names unique across
// their scope, binds that do not overlap, and references to backends (which
// may point forward, so they are checked once everything is read).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.h"
#include "config/endpoint.h"
#include "config/gateway_config.h"

namespace sag::config {

// Names that must be unique within one scope (listeners, backends, the
// servers of one backend).
class UniqueNames {
 public:
  // Records `name`, given at `at`; when it was given before, reports
  // "duplicate <kind> name 'NAME' [<where> ](first at line N)".
  void add(ErrorLog& log, const std::string& name, Pos at, std::string_view kind, std::string_view where = {});
  // "a, b, c": each name once, in the order first given.
  std::string list() const;

 private:
  struct Seen {
    std::string name;
    Pos at;
  };
  std::vector<Seen> seen_;
};

class CrossChecks {
 public:
  explicit CrossChecks(ErrorLog& log) : log_(log) {}

  void listener_name(const std::string& name, Pos at) { listeners_.add(log_, name, at, "listener"); }
  void backend_name(const std::string& name, Pos at) { backends_.add(log_, name, at, "backend"); }
  // A listener's or route's `backend`, from a listener of `mode`; checked
  // by finish() (the backend must exist and have the same mode).
  void backend_ref(const std::string& name, Pos at, ProxyMode mode) {
    backend_refs_.push_back({name, at, mode});
  }
  // A listening address; reports one that overlaps an earlier one.
  void bind(const Endpoint& ep, const std::string& owner, Pos at);

  // Reports every backend reference that names no backend of `cfg`, or one
  // of the other mode.
  void finish(const GatewayConfig& cfg);

 private:
  struct BackendRef {
    std::string name;
    Pos at;
    ProxyMode mode;
  };
  struct BindUse {
    Endpoint endpoint;
    std::string owner;
    Pos at;
  };

  ErrorLog& log_;
  UniqueNames listeners_;
  UniqueNames backends_;
  std::vector<BackendRef> backend_refs_;
  std::vector<BindUse> binds_;
};

}  // namespace sag::config
