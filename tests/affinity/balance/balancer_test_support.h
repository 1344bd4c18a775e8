// Helpers for the balancer tests: a Backend built from a short spec, pick
// counting, and fixed points in steady time.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "affinity/model/backend.h"
#include "affinity/balance/balancer.h"
#include "affinity/model/server.h"
#include "affinity/balance/stable_hash.h"

namespace sag::affinity::testing {

struct Spec {
  std::string name;
  uint32_t weight = 100;
  bool backup = false;
};

inline config::BackendConfig backend_config(
    const std::vector<Spec>& specs,
    config::BalanceAlgorithm balance = config::BalanceAlgorithm::kRoundRobin,
    std::chrono::milliseconds slow_start = {}) {
  config::BackendConfig b;
  b.name = "app";
  b.balance = balance;
  b.slow_start = slow_start;
  uint16_t port = 9001;
  for (const auto& sp : specs) {
    config::ServerConfig s;
    s.name = sp.name;
    s.address = "127.0.0.1:" + std::to_string(port++);
    auto ep = config::Endpoint::parse(s.address);
    EXPECT_TRUE(ep);
    s.endpoint = ep.value_or(config::Endpoint{});
    s.weight = sp.weight;
    s.backup = sp.backup;
    b.servers.push_back(s);
  }
  return b;
}

inline std::unique_ptr<Backend> make_backend(
    const std::vector<Spec>& specs,
    config::BalanceAlgorithm balance = config::BalanceAlgorithm::kRoundRobin,
    std::chrono::milliseconds slow_start = {}) {
  return std::make_unique<Backend>(backend_config(specs, balance, slow_start));
}

// A steady time well away from the clock's epoch (the epoch means "no clock").
inline std::chrono::steady_clock::time_point at_ms(int64_t ms) {
  return std::chrono::steady_clock::time_point(std::chrono::hours(1000)) +
         std::chrono::milliseconds(ms);
}

// Picks n times; with vary_hash, request i carries hash mix of i (distinct keys).
inline std::map<std::string, int> count(Balancer& bal, int n, SelectContext ctx = {},
                                        bool vary_hash = false) {
  std::map<std::string, int> m;
  for (int i = 0; i < n; ++i) {
    if (vary_hash) ctx.hash = mix64(static_cast<uint64_t>(i) + 1);
    Server* s = bal.select(ctx);
    ++m[s ? s->name() : "null"];
  }
  return m;
}

inline std::string pick_names(Balancer& bal, int n, SelectContext ctx = {}) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    Server* s = bal.select(ctx);
    if (!out.empty()) out += ' ';
    out += s ? s->name() : "null";
  }
  return out;
}

}  // namespace sag::affinity::testing
