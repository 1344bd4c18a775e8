#include "affinity/balance/least_time_balancer.h"

#include "affinity/model/server.h"
#include "affinity/balance/weighted_sampler.h"

namespace sag::affinity {

namespace {

double score(const Server& s, uint32_t weight) {
  if (!s.has_response_time()) return 0.0;
  const double ewma = static_cast<double>(s.response_time_ewma().count()) + 1.0;
  const double active = static_cast<double>(s.active_requests()) + 1.0;
  return ewma * active / static_cast<double>(weight == 0 ? 1 : weight);
}

}  // namespace

Server* LeastTimeBalancer::prefer(Server* a, uint32_t wa, Server* b, uint32_t wb) const {
  const double sa = score(*a, wa);
  const double sb = score(*b, wb);
  if (sb != sa) return sb < sa ? b : a;
  // Equal scores (both unmeasured): fewer active per weight, else the first.
  return fewer_active_per_weight(a, wa, b, wb);
}

}  // namespace sag::affinity
