#include "config/base/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace sag::base {

void random_bytes(void* p, size_t n) {
  auto* out = static_cast<unsigned char*>(p);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(out + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
    } else if (r < 0 && errno != EINTR) {
      break;
    }
  }
  if (got == n) return;
  std::random_device rd;
  while (got < n) {
    const auto w = static_cast<uint32_t>(rd());
    const size_t k = n - got < sizeof w ? n - got : sizeof w;
    std::memcpy(out + got, &w, k);
    got += k;
  }
}

uint64_t random_u64() {
  uint64_t v;
  random_bytes(&v, sizeof v);
  return v;
}

}  // namespace sag::base
