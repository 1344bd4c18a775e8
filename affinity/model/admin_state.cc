#include "affinity/model/admin_state.h"

namespace sag::affinity {

const char* to_string(AdminState s) {
  switch (s) {
    case AdminState::kReady: return "ready";
    case AdminState::kDrain: return "drain";
    case AdminState::kMaint: return "maint";
  }
  return "ready";
}

std::optional<AdminState> parse_admin_state(std::string_view s) {
  if (s == "ready") return AdminState::kReady;
  if (s == "drain") return AdminState::kDrain;
  if (s == "maint") return AdminState::kMaint;
  return std::nullopt;
}

}  // namespace sag::affinity
