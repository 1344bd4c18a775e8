#include "affinity/balance/random_balancer.h"

#include "affinity/balance/weighted_sampler.h"

namespace sag::affinity {

Server* RandomBalancer::prefer(Server* a, uint32_t wa, Server* b, uint32_t wb) const {
  return fewer_active_per_weight(a, wa, b, wb);
}

}  // namespace sag::affinity
