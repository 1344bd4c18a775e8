// The gateway's own messages (not the access log): one line each on stderr,
// "YYYY-mm-ddTHH:MM:SSZ LEVEL message". Thread-safe (one fprintf per line).
#pragma once

#include <string_view>

namespace sag::gateway {

void log_info(std::string_view message);
void log_warning(std::string_view message);
void log_error(std::string_view message);

}  // namespace sag::gateway
