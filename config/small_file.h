// Reading the small files a configuration names (itself, secrets, passwords).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace sag::config {

// The whole content of a regular file of at most `max_bytes`; on failure
// nullopt, with the reason in `why` ("not a regular file", "larger than N
// bytes", or the system's message).
std::optional<std::string> read_small_file(const std::string& path, std::string& why, size_t max_bytes);

}  // namespace sag::config
