#include "gateway/log.h"

#include <cstdio>
#include <ctime>

namespace sag::gateway {
namespace {

void emit(const char* level, std::string_view message) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "%s %s %.*s\n", date, level, static_cast<int>(message.size()),
               message.data());
}

}  // namespace

void log_info(std::string_view message) { emit("info", message); }
void log_warning(std::string_view message) { emit("warning", message); }
void log_error(std::string_view message) { emit("error", message); }

}  // namespace sag::gateway
