// A worker's view of a new config generation (session/generation.h): its
// pools move over for backends whose servers all stay at their addresses,
// and start afresh (the old one's idle connections closed) otherwise.
#include "session/generation.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "affinity/model/server.h"
#include "affinity/store/memory_affinity_store.h"

namespace sag::session {
namespace {

struct Srv {
  std::string name;
  uint16_t port;
};

std::shared_ptr<const config::GatewayConfig> config_of(
    const std::vector<std::pair<std::string, std::vector<Srv>>>& backends) {
  auto c = std::make_shared<config::GatewayConfig>();
  for (const auto& [name, servers] : backends) {
    config::BackendConfig b;
    b.name = name;
    for (const auto& s : servers) {
      config::ServerConfig sc;
      sc.name = s.name;
      sc.address = "127.0.0.1:" + std::to_string(s.port);
      sc.endpoint = config::Endpoint::parse(sc.address).value();
      b.servers.push_back(sc);
    }
    c->backends.push_back(b);
  }
  return c;
}

std::shared_ptr<const Generation> generation(std::shared_ptr<const config::GatewayConfig> c,
                                             const Generation* previous) {
  auto g = std::make_shared<Generation>();
  g->number = previous ? previous->number + 1 : 1;
  g->config = c;
  g->backends = std::make_shared<affinity::BackendSet>(*c, previous ? previous->backends.get() : nullptr);
  return g;
}

const BackendRuntime& runtime(const WorkerGeneration& wg, const std::string& name) {
  for (const auto& rt : wg.backends)
    if (rt.backend->name() == name) return rt;
  ADD_FAILURE() << "no backend " << name;
  return wg.backends.front();
}

TEST(WorkerGenerationTest, PoolsStayUnlessAServersAddressChanged) {
  affinity::MemoryAffinityStore store(64);
  auto g1 = generation(config_of({{"a", {{"s1", 9001}, {"s2", 9002}}}, {"b", {{"t1", 9101}}}}), nullptr);
  auto w1 = WorkerGeneration::build(g1, 0, &store, nullptr);

  // Reordered, one server added to a; b's only server moved to another port.
  auto g2 = generation(config_of({{"a", {{"s3", 9003}, {"s2", 9002}, {"s1", 9001}}},
                                  {"b", {{"t1", 9199}}}}),
                       g1.get());
  auto w2 = WorkerGeneration::build(g2, 0, &store, w1.get());
  EXPECT_EQ(runtime(*w2, "a").pool, runtime(*w1, "a").pool) << "a kept server, a kept pool";
  EXPECT_NE(runtime(*w2, "b").pool, runtime(*w1, "b").pool) << "an address changed: a new pool";

  // Endpoints are by server id, whatever the order in the file.
  const auto& a2 = runtime(*w2, "a");
  const affinity::Server* s1 = a2.backend->find_server("s1");
  const affinity::Server* s3 = a2.backend->find_server("s3");
  EXPECT_EQ(a2.endpoints.at(s1->index()).port(), 9001);
  EXPECT_EQ(a2.endpoints.at(s3->index()).port(), 9003);
  EXPECT_EQ(a2.endpoints.size(), a2.backend->id_count());

  // A server removed: the pool that may hold connections to it goes.
  auto g3 = generation(config_of({{"a", {{"s2", 9002}, {"s1", 9001}}}, {"b", {{"t1", 9199}}}}),
                       g2.get());
  auto w3 = WorkerGeneration::build(g3, 0, &store, w2.get());
  EXPECT_NE(runtime(*w3, "a").pool, runtime(*w2, "a").pool);
  EXPECT_EQ(runtime(*w3, "b").pool, runtime(*w2, "b").pool);
}

}  // namespace
}  // namespace sag::session
