// Fuzzes Cookie header handling and the sticky cookie decoder. Properties:
// decoding never names a server outside the backend (undated, and dated +
// signed with two secrets), a verified dated value has consistent dates,
// anything but an exact gateway-issued value fails a signed decode, and
// removing the gateway's cookie leaves no pair of that name behind.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "affinity/model/backend.h"
#include "affinity/cookie/cookie_header.h"

namespace {

sag::config::BackendConfig backend_config() {
  sag::config::BackendConfig c;
  c.name = "app";
  for (const char* n : {"s1", "s2", "s3"}) {
    sag::config::ServerConfig s;
    s.name = n;
    s.endpoint = *sag::config::Endpoint::parse("127.0.0.1:9001");
    c.servers.push_back(s);
  }
  return c;
}

const sag::affinity::Backend& backend() {
  static const sag::affinity::Backend* b = new sag::affinity::Backend(backend_config());
  return *b;
}

// max_idle 30m, max_life 8h, secrets [k1, k0] (k0 verifies only).
const sag::affinity::Backend& dated_backend() {
  static const sag::affinity::Backend* b = [] {
    auto c = backend_config();
    c.persistence.cookie->max_idle = std::chrono::minutes(30);
    c.persistence.cookie->max_life = std::chrono::hours(8);
    c.persistence.cookie->secrets = {"k1", "k0"};
    return new sag::affinity::Backend(c);
  }();
  return *b;
}

void check_server(const sag::affinity::Backend& b, const sag::affinity::Server* s) {
  if (!s) return;
  bool found = false;
  for (auto* x : b.servers()) found |= x == s;
  if (!found) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using sag::affinity::CookieStatus;
  const int64_t now = 1700000000;

  const auto& b = backend();
  auto lookup = b.cookie()->decode(in, now);
  check_server(b, lookup.server);

  const auto& d = dated_backend();
  const auto& dc = *d.cookie();
  for (int64_t t : {now, now + 3600, int64_t{0}, INT64_MAX, INT64_MIN}) {
    auto r = dc.decode(in, t);
    check_server(d, r.server);
    if ((r.status == CookieStatus::kValid) != (r.server != nullptr)) std::abort();
    if (r.status == CookieStatus::kValid &&
        (!r.created || !r.last_seen || *r.created > *r.last_seen))
      std::abort();
  }
  // A value the gateway issues always verifies; the input, unless it is
  // exactly such a value, never does (the MAC). Dates from the input's
  // first bytes.
  int64_t issued = now;  // within max_idle (30m) of now
  if (size >= 2) issued -= (data[0] << 8 | data[1]) % 1800;
  const auto* s = d.servers()[size % d.servers().size()];
  const std::string v = dc.value_for(*s, issued, issued - 5);
  auto ok = dc.decode(v, now);
  if (ok.status != CookieStatus::kValid || ok.server != s || ok.created != issued - 5 ||
      ok.last_seen != issued)
    std::abort();
  if (in.size() == v.size() && in != v) {
    // Splice the input's bytes over the issued value: still 49 bytes.
    if (dc.decode(in, now).status == CookieStatus::kValid &&
        in.substr(0, 27) == std::string_view(v).substr(0, 27))
      std::abort();  // same id and dates, different MAC, yet verified
  }

  if (auto v2 = sag::affinity::find_cookie(in, "SRV")) {
    if (v2->data() < in.data() || v2->data() + v2->size() > in.data() + in.size()) std::abort();
  }
  std::string rest;
  sag::affinity::remove_cookie(in, "SRV", rest);
  if (sag::affinity::find_cookie(rest, "SRV")) std::abort();
  return 0;
}
