// Fuzzes the YAML config loader: any input yields a config or errors with
// positions, never a crash or an escaping exception.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = sag::config::ConfigLoader::load_string(in, "fuzz.yaml", "/nonexistent");
  if (!r.config && r.errors.empty()) std::abort();
  if (r.config && !r.errors.empty()) std::abort();
  return 0;
}
