// Fuzzes Cookie header handling and the sticky cookie decoder. Properties:
// decoding never names a server outside the backend, and removing the
// gateway's cookie leaves no pair of that name behind.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "affinity/backend.h"
#include "affinity/cookie_header.h"

namespace {

const sag::affinity::Backend& backend() {
  static const sag::affinity::Backend* b = [] {
    sag::config::BackendConfig c;
    c.name = "app";
    for (const char* n : {"s1", "s2", "s3"}) {
      sag::config::ServerConfig s;
      s.name = n;
      s.endpoint = *sag::config::Endpoint::parse("127.0.0.1:9001");
      c.servers.push_back(s);
    }
    return new sag::affinity::Backend(c);
  }();
  return *b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto& b = backend();
  const auto* sticky = b.cookie();
  auto lookup = sticky->decode(in, 1700000000);
  if (lookup.server) {
    bool found = false;
    for (auto* s : b.servers()) found |= s == lookup.server;
    if (!found) std::abort();
  }
  if (auto v = sag::affinity::find_cookie(in, "SRV")) {
    if (v->data() < in.data() || v->data() + v->size() > in.data() + in.size()) std::abort();
  }
  std::string rest;
  sag::affinity::remove_cookie(in, "SRV", rest);
  if (sag::affinity::find_cookie(rest, "SRV")) std::abort();
  return 0;
}
