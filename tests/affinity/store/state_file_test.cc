// The memory store's state file (affinity/store/state_file.h): round trip,
// servers by name, TTL across the downtime, and every kind of damage.
#include "affinity/store/state_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace sag::affinity {
namespace {

using namespace std::chrono_literals;

TimePoint at_s(int64_t s) { return TimePoint(std::chrono::hours(1000)) + std::chrono::seconds(s); }
std::string key(std::string_view backend, std::string_view value) {
  std::string k(backend);
  k += '\0';
  k += 'L';
  k += '\0';
  k += value;
  return k;
}
constexpr int64_t kWall = 1'800'000'000'000;  // Unix ms of the save

const StateFile::Layout kLayout = {{"app", {"s1", "s2", "s3"}}, {"api", {"a1", "a2"}}};

// A store with 30 app entries (server i % 3), 10 api entries (i % 2), TTL
// 100 s from t=0, and one entry that never expires.
std::map<std::string, ServerId> fill(MemoryAffinityStore& store) {
  std::map<std::string, ServerId> put;
  for (int i = 0; i < 30; ++i) put[key("app", "u" + std::to_string(i))] = i % 3;
  for (int i = 0; i < 10; ++i) put[key("api", "v" + std::to_string(i))] = i % 2;
  for (const auto& [k, s] : put) store.put(k, s, 100s, at_s(0));
  store.put(key("app", "forever"), 1, Duration(0), at_s(0));
  put[key("app", "forever")] = 1;
  return put;
}

std::string encoded(const MemoryAffinityStore& store, TimePoint now, const StateFile::Layout& layout = kLayout) {
  return StateFile::encode(store.hash_key(), store.live_entries(now), layout, kWall);
}

TEST(StateFile, RoundTripFindsEveryEntryUnderItsKey) {
  MemoryAffinityStore a(1000);
  const auto put = fill(a);
  StateFile::Contents got;
  std::string error;
  ASSERT_TRUE(StateFile::decode(encoded(a, at_s(10)), kLayout, kWall, got, error)) << error;
  EXPECT_EQ(got.saved, put.size());
  EXPECT_EQ(got.entries.size(), put.size());
  EXPECT_EQ(got.expired + got.server_gone, 0u);
  MemoryAffinityStore b(1000);  // another random key: adopt() takes a's
  ASSERT_TRUE(b.adopt(got.key, got.entries, at_s(500)));
  for (const auto& [k, s] : put) EXPECT_EQ(b.find(k, at_s(500)), s);
  EXPECT_EQ(b.find(key("app", "never-put"), at_s(500)), std::nullopt);
}

TEST(StateFile, TtlLeftShrinksByTheDowntime) {
  MemoryAffinityStore a(1000);
  fill(a);  // 100 s from t=0
  StateFile::Contents got;
  std::string error;
  // Saved at t=10 (90 s left), read 30 s later: 60 s left from the adoption.
  ASSERT_TRUE(StateFile::decode(encoded(a, at_s(10)), kLayout, kWall + 30'000, got, error));
  MemoryAffinityStore b(1000);
  ASSERT_TRUE(b.adopt(got.key, got.entries, at_s(0)));
  EXPECT_EQ(b.find(key("app", "u1"), at_s(59)), 1u);
  EXPECT_EQ(b.find(key("app", "u1"), at_s(61)), std::nullopt);
  EXPECT_EQ(b.find(key("app", "forever"), at_s(1'000'000)), 1u);
  // Read after 95 s: all but the one without expiry expired meanwhile.
  ASSERT_TRUE(StateFile::decode(encoded(a, at_s(10)), kLayout, kWall + 95'000, got, error));
  EXPECT_EQ(got.entries.size(), 1u);
  EXPECT_EQ(got.expired, 40u);
  // A clock set back counts as no downtime.
  ASSERT_TRUE(StateFile::decode(encoded(a, at_s(10)), kLayout, kWall - 50'000, got, error));
  EXPECT_EQ(got.entries.size(), 41u);
}

TEST(StateFile, ServersAreMatchedByNameWhereverTheyNowStand) {
  MemoryAffinityStore a(1000);
  const auto put = fill(a);
  // app: s2 removed, s3 and s1 swapped, s4 new; api gone; other added.
  const StateFile::Layout now = {{"other", {"x"}}, {"app", {"s3", "s4", "s1"}}};
  StateFile::Contents got;
  std::string error;
  ASSERT_TRUE(StateFile::decode(encoded(a, at_s(0)), now, kWall, got, error)) << error;
  MemoryAffinityStore b(1000);
  ASSERT_TRUE(b.adopt(got.key, got.entries, at_s(0)));
  const std::vector<std::string> old_names = {"s1", "s2", "s3"};
  size_t gone = 0;
  for (const auto& [k, s] : put) {
    const auto found = b.find(k, at_s(1));
    if (k.starts_with("api") || old_names[s] == "s2") {
      EXPECT_EQ(found, std::nullopt) << k;
      ++gone;
    } else {
      ASSERT_TRUE(found) << k;
      EXPECT_EQ(now[1].servers[*found], old_names[s]) << k;
    }
  }
  EXPECT_EQ(got.server_gone, gone);
  EXPECT_EQ(gone, 10u + 10u + 1u);  // api's, s2's (u1, u4, .. and "forever")
}

TEST(StateFile, BackendsWhoseTagsCollideLoseTheirEntriesOnly) {
  // Two backend names with one 16-bit tag (found by search).
  std::map<uint16_t, std::string> seen;
  std::string x, y;
  for (int i = 0; x.empty(); ++i) {
    const std::string name = "b" + std::to_string(i);
    auto [it, fresh] = seen.emplace(MemoryAffinityStore::backend_tag(name), name);
    if (!fresh) {
      x = it->second;
      y = name;
    }
  }
  const StateFile::Layout layout = {{x, {"s1"}}, {y, {"s1"}}, {"app", {"s1"}}};
  MemoryAffinityStore a(1000);
  a.put(key(x, "1"), 0, 100s, at_s(0));
  a.put(key(y, "1"), 0, 100s, at_s(0));
  a.put(key("app", "1"), 0, 100s, at_s(0));
  StateFile::Contents got;
  std::string error;
  ASSERT_TRUE(StateFile::decode(encoded(a, at_s(0), layout), layout, kWall, got, error));
  EXPECT_EQ(got.entries.size(), 1u);
  EXPECT_EQ(got.server_gone, 2u);
}

TEST(StateFile, EveryDamagedByteOrLengthIsRefusedWhole) {
  MemoryAffinityStore a(1000);
  a.put(key("app", "1"), 2, 100s, at_s(0));
  a.put(key("api", "2"), 1, 100s, at_s(0));
  const std::string good = encoded(a, at_s(0));
  StateFile::Contents got;
  std::string error;
  ASSERT_TRUE(StateFile::decode(good, kLayout, kWall, got, error));
  for (size_t i = 0; i < good.size(); ++i) {
    for (unsigned char bit : {0x01, 0x80}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ bit);
      EXPECT_FALSE(StateFile::decode(bad, kLayout, kWall, got, error)) << "byte " << i;
      EXPECT_TRUE(got.entries.empty());
    }
  }
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(StateFile::decode(good.substr(0, n), kLayout, kWall, got, error)) << "length " << n;
  EXPECT_FALSE(StateFile::decode(good + "x", kLayout, kWall, got, error));
  EXPECT_FALSE(StateFile::decode("", kLayout, kWall, got, error));
  EXPECT_EQ(error, "not a state file (no SAGSTAT2 header)");
}

class StateFileOnDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sag-state-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/affinity.state";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, path_;
};

TEST_F(StateFileOnDisk, SavedPrivatelyAndAtomically) {
  MemoryAffinityStore a(1000);
  const auto put = fill(a);
  size_t written = 0;
  std::string error;
  { std::ofstream(path_) << "the previous file"; }
  ASSERT_TRUE(StateFile::save(path_, a, kLayout, at_s(0), kWall, written, error)) << error;
  EXPECT_EQ(written, put.size());
  struct stat st{};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  StateFile::Contents got;
  ASSERT_TRUE(StateFile::load(path_, kLayout, kWall, got, error)) << error;
  EXPECT_EQ(got.entries.size(), put.size());
  // A folder that isn't there: refused, nothing left behind.
  EXPECT_FALSE(StateFile::save(dir_ + "/no/such", a, kLayout, at_s(0), kWall, written, error));
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
}

TEST_F(StateFileOnDisk, MissingFileSaysSo) {
  StateFile::Contents got;
  std::string error;
  EXPECT_FALSE(StateFile::load(path_, kLayout, kWall, got, error));
  EXPECT_EQ(error, "No such file or directory");
}

TEST(StateFile, AdoptOnlyIntoAnEmptyStore) {
  MemoryAffinityStore a(1000);
  fill(a);
  MemoryAffinityStore b(1000);
  b.put(key("app", "mine"), 0, 100s, at_s(0));
  EXPECT_FALSE(b.adopt(a.hash_key(), a.live_entries(at_s(0)), at_s(0)));
  EXPECT_EQ(b.find(key("app", "mine"), at_s(0)), 0u);
  EXPECT_EQ(b.find(key("app", "u1"), at_s(0)), std::nullopt);
}

TEST(StateFile, MergeAddsOnlyWhatTheStoreLacks) {
  MemoryAffinityStore old_store(1000);
  old_store.put(key("app", "both"), 2, 100s, at_s(0));
  old_store.put(key("app", "old-only"), 1, 100s, at_s(0));
  MemoryAffinityStore b(1000);
  ASSERT_TRUE(b.adopt(old_store.hash_key(), {}, at_s(0)));
  b.put(key("app", "both"), 0, 100s, at_s(1));  // its own decision meanwhile
  EXPECT_EQ(b.merge(old_store.live_entries(at_s(1)), at_s(1)), 1u);
  EXPECT_EQ(b.find(key("app", "both"), at_s(2)), 0u);
  EXPECT_EQ(b.find(key("app", "old-only"), at_s(2)), 1u);
}

TEST(StateFile, AdoptingMoreThanTheCapacityKeepsItsBound) {
  MemoryAffinityStore a(5000, 1);
  for (int i = 0; i < 5000; ++i) a.put(key("app", std::to_string(i)), 0, 100s, at_s(0));
  MemoryAffinityStore b(1000, 1);
  ASSERT_TRUE(b.adopt(a.hash_key(), a.live_entries(at_s(0)), at_s(0)));
  EXPECT_EQ(b.size(), 1000u);
}

// Admin state (drain, maint, a weight the admin API set) travels with the
// file; a weight comes back only where the config still gives the server
// the weight it gave at the save.
TEST(StateFile, AdminStateTravelsByServerName) {
  StateFile::Layout saved = kLayout;
  saved[0].admin = {{AdminState::kDrain, 100, 100}, {AdminState::kReady, 7, 100},
                    {AdminState::kMaint, 100, 100}};
  MemoryAffinityStore a(16);
  const std::string bytes = StateFile::encode(a.hash_key(), {}, saved, kWall);
  // Now s3 is gone and the servers are in another order.
  const StateFile::Layout now = {{"app", {"s2", "s1"}}, {"api", {"a1", "a2"}}};
  StateFile::Contents got;
  std::string error;
  ASSERT_TRUE(StateFile::decode(bytes, now, kWall, got, error)) << error;
  std::map<std::string, ServerNames::Admin> by;
  for (const auto& c : got.admin) {
    EXPECT_EQ(c.backend, "app");  // api had no admin records
    by[c.server] = c.admin;
  }
  ASSERT_EQ(by.size(), 2u);
  EXPECT_EQ(by["s1"].state, AdminState::kDrain);
  EXPECT_EQ(by["s2"].state, AdminState::kReady);
  EXPECT_EQ(by["s2"].weight, 7u);
  EXPECT_EQ(by["s2"].config_weight, 100u);
}

TEST(StateFile, AVersionOneFileIsReadWithoutAdminState) {
  // SAGSTAT1: as SAGSTAT2 without the per-server records.
  MemoryAffinityStore a(16);
  const StateFile::Layout layout = {{"app", {"s1"}}};
  std::string v2 = StateFile::encode(a.hash_key(), {}, layout, kWall);
  std::string body = v2.substr(0, v2.size() - 16);
  body.replace(0, 8, "SAGSTAT1");
  // app's one record: 10 bytes after the server's name.
  const size_t rec = body.find("s1", 8 + 8 + 16) + 2;  // after the magic, time and key
  body.erase(rec, 10);
  const std::string v1 = body + StateFile::checksum(body);
  StateFile::Contents got;
  std::string error;
  ASSERT_TRUE(StateFile::decode(v1, layout, kWall, got, error)) << error;
  EXPECT_TRUE(got.admin.empty());
}

}  // namespace
}  // namespace sag::affinity
