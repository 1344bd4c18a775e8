// Fuzzes the state file reader (affinity/store/state_file.h). The first byte
// picks the input's form: odd, the rest is a body that gets its checksum
// appended (so the parser behind the check is reached); even, the rest is
// the file as is. Properties: reading never fails open (a refused file
// yields no entry), every entry read names a server of the current layout
// under its backend's tag, no more entries come out than the file says it
// holds, and a store adopts them within its capacity.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "affinity/store/state_file.h"

namespace {

using sag::affinity::MemoryAffinityStore;
using sag::affinity::StateFile;

const StateFile::Layout kLayout = {{"app", {"s1", "s2", "s3"}}, {"api", {"a1"}}};

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) file += StateFile::checksum(file);
  StateFile::Contents got;
  std::string error;
  const bool ok = StateFile::decode(file, kLayout, 1'800'000'000'000, got, error);
  if (!ok) {
    check(got.entries.empty() && !error.empty());
    return 0;
  }
  check(got.entries.size() + got.expired + got.server_gone == got.saved);
  std::map<uint16_t, size_t> servers;
  for (const auto& b : kLayout) servers[MemoryAffinityStore::backend_tag(b.backend)] = b.servers.size();
  for (const auto& e : got.entries) {
    auto it = servers.find(e.backend_tag);
    check(it != servers.end() && e.server < it->second && e.ttl_ns > 0);
  }
  MemoryAffinityStore store(64, 1);
  check(store.adopt(got.key, got.entries, std::chrono::steady_clock::time_point{}));
  check(store.size() <= 64);
  return 0;
}
