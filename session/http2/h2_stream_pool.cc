#include "session/http2/h2_stream_pool.h"

namespace sag::session {

PooledStream& H2StreamPool::take(int32_t id) {
  PooledStream* st;
  if (!free_.empty()) {
    st = free_.back();
    free_.pop_back();
  } else {
    // Room in free_ first, so giving back never allocates (nor throws).
    if (free_.capacity() < all_.size() + 1) free_.reserve(2 * all_.size() + 8);
    all_.push_back(std::make_unique<PooledStream>(ex_, group_, conn_, pin_));
    st = all_.back().get();
  }
  st->reuse(id);
  return *st;
}

void H2StreamPool::trim(size_t keep) {
  if (all_.size() <= keep || free_.size() != all_.size()) return;
  all_.resize(keep);
  free_.clear();
  for (auto& p : all_) free_.push_back(p.get());
}

}  // namespace sag::session
