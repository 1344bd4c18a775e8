// The `affinity_store` section: memory or Redis (direct or via Sentinel).
#include <yaml-cpp/yaml.h>

#include "config/config_schema.h"

namespace sag::config {

namespace {

void read_sentinel(YamlReader& redis, RedisConfig& c) {
  YamlReader sr = redis.child("sentinel", "'affinity_store.redis.sentinel'");
  if (!sr.ok()) return;
  if (auto items = sr.list("addresses")) {
    if (items->empty()) sr.log().error(sr.at("addresses"), "'addresses': give at least one sentinel address");
    for (const auto& item : *items) {
      if (item.IsScalar() && Endpoint::parse(item.Scalar()))
        c.sentinel_addresses.push_back(item.Scalar());
      else
        sr.log().error(pos_of(item), "'addresses': bad address " +
                                         (item.IsScalar() ? quote(item.Scalar()) : std::string(kind_of(item))) +
                                         " (use e.g. 127.0.0.1:26379)");
    }
  } else if (!sr.has("addresses")) {
    sr.missing("addresses");
  }
  if (auto m = sr.required("master")) c.sentinel_master = *m;
}

void read_redis(SchemaContext& ctx, YamlReader& store, RedisConfig& c) {
  YamlReader rr = store.child("redis", "'affinity_store.redis'");
  if (!rr.ok()) return;
  if (rr.read("address", c.address) && !Endpoint::parse(c.address))
    ctx.error(rr.at("address"), "'address': bad address " + quote(c.address) + " (use e.g. 127.0.0.1:6379)");
  if (rr.has("sentinel")) {
    if (rr.has("address"))
      ctx.error(rr.key_at("sentinel"), "'sentinel': give either 'address' or 'sentinel', not both");
    read_sentinel(rr, c);
  }
  ctx.read_secret_line(rr, c.password_file, c.password);
  rr.read("key_prefix", c.key_prefix);
  ctx.read_secret_line(rr, c.key_secret_file, c.key_secret, "key_secret_file");
  rr.read_uint("db", c.db, 0, 2147483647);
  rr.read_positive("timeout", c.timeout);
}

}  // namespace

void read_affinity_store(SchemaContext& ctx, YamlReader& root, AffinityStoreConfig& s) {
  if (!root.has("affinity_store")) return;
  YamlReader r = root.child("affinity_store", "'affinity_store'");
  if (!r.ok()) return;
  r.read_enum("type", s.type, {{"memory", StoreType::kMemory}, {"redis", StoreType::kRedis}});
  r.read_uint("capacity", s.capacity, 1, uint64_t{1} << 40);
  if (r.has("redis")) read_redis(ctx, r, s.redis);
  // Redis keeps the entries itself (and the local copy reloads from it).
  if (ctx.read_output_path(r, "state_file", s.state_file) && s.type != StoreType::kMemory)
    ctx.error(r.at("state_file"), "'state_file': only for type: memory (Redis keeps the entries)");
}

}  // namespace sag::config
