#include "session/generation.h"

#include "session/asio_endpoint.h"

namespace sag::session {

namespace {

// The previous view's runtime of the same backend, or null.
const BackendRuntime* find_previous(const WorkerGeneration* previous, const affinity::Backend& b) {
  if (!previous) return nullptr;
  for (const auto& rt : previous->backends)
    if (rt.backend->id() == b.id() && rt.backend->name() == b.name()) return &rt;
  return nullptr;
}

// The previous pool when every server it may hold connections to is still
// there at the same address; otherwise a fresh one (in-flight requests of
// the previous generation give their connections back to the old pool,
// which goes with that generation).
std::shared_ptr<UpstreamPool> carry_pool(const BackendRuntime* before, const affinity::Backend& b,
                                         const std::vector<boost::asio::ip::tcp::endpoint>& endpoints) {
  if (before) {
    bool same = true;
    for (const affinity::Server* old : before->backend->servers()) {
      const affinity::Server* now = b.server(old->index());
      if (!now || now->state() != old->state() || endpoints[old->index()] != before->endpoints[old->index()])
        same = false;
    }
    if (same) {
      before->pool->reconfigure(b.id_count(), b.config().pool);
      return before->pool;
    }
    before->pool->close_all();
  }
  return std::make_shared<UpstreamPool>(b.id_count(), b.config().pool);
}

}  // namespace

std::shared_ptr<WorkerGeneration> WorkerGeneration::build(std::shared_ptr<const Generation> gen,
                                                          unsigned index, affinity::AffinityStore* store,
                                                          const WorkerGeneration* previous) {
  auto wg = std::make_shared<WorkerGeneration>();
  wg->config = gen->config.get();
  wg->access_log = gen->access_log.get();
  for (const auto& b : gen->backends->backends()) {
    BackendRuntime rt;
    rt.backend = b.get();
    rt.balancer = b->make_balancer(0x9e3779b97f4a7c15ULL * (index + 1));
    // Staggered so that workers don't all start on the same server.
    for (unsigned i = 0; i < index % std::max<size_t>(1, b->servers().size()); ++i)
      rt.balancer->select({});
    rt.resolver = std::make_unique<affinity::AffinityResolver>(*b, *rt.balancer, store);
    rt.endpoints.resize(b->id_count());
    for (const affinity::Server* s : b->servers()) rt.endpoints[s->index()] = to_asio_endpoint(s->endpoint());
    rt.pool = carry_pool(find_previous(previous, *b), *b, rt.endpoints);
    const auto& bc = b->config();
    if (bc.balance == config::BalanceAlgorithm::kSource) {
      rt.hash_source = HashSource::kSource;
    } else if (bc.balance == config::BalanceAlgorithm::kHash) {
      rt.hash_source = bc.hash.source;  // parsed at load
      rt.hash_name = bc.hash.name;
    }
    wg->backends.push_back(std::move(rt));
  }
  // Backends that are gone: their idle connections close now.
  if (previous)
    for (const auto& rt : previous->backends)
      if (!gen->backends->find(rt.backend->name())) rt.pool->close_all();
  wg->shared = std::move(gen);
  return wg;
}

}  // namespace sag::session
