// Seeds and keys from the operating system's generator, for what must not
// be guessed from outside (hash keys, instance ids); not for the request
// path's choices, which take a seeded fast generator.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sag::base {

// Fills [p, p + n) from getrandom(2), retrying on EINTR and short reads;
// where getrandom is unavailable (very old kernels), from
// std::random_device instead. Never fails.
void random_bytes(void* p, size_t n);
uint64_t random_u64();

}  // namespace sag::base
