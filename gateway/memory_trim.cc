#include "gateway/memory_trim.h"

#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
#define SAG_NO_MALLOC_TRIM 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAG_NO_MALLOC_TRIM 1
#endif
#endif

namespace sag::gateway {

size_t MemoryTrim::trim_if_worth_it(size_t threshold) {
#ifdef SAG_NO_MALLOC_TRIM
  (void)threshold;
  return 0;
#else
  // fordblks: free bytes in every arena's chunks (the top chunk included,
  // which glibc trims by itself past M_TRIM_THRESHOLD).
  const struct mallinfo2 mi = mallinfo2();
  const size_t free_bytes = mi.fordblks;
  if (free_bytes > threshold) malloc_trim(0);
  return free_bytes;
#endif
}

void MemoryTrim::schedule() {
  timer_.expires_after(kPeriod);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    trim_if_worth_it();
    schedule();
  });
}

}  // namespace sag::gateway
