// The cross-process hash (affinity/balance/stable_hash.h): pinned values, so a change
// that would remap every hashed session fails here.
#include "affinity/balance/stable_hash.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace sag::affinity {
namespace {

TEST(StableHash, PinnedValues) {
  EXPECT_EQ(stable_hash64(""), 0x0000000000000000ULL);
  EXPECT_EQ(stable_hash64("a"), 0x27280094845a2c9bULL);
  EXPECT_EQ(stable_hash64("JSESSIONID=abc123"), 0x4f80a6ad3050cd34ULL);
  EXPECT_EQ(stable_hash64(std::string_view("app\0learn\0x", 11)), 0x2e9392cb96cf931bULL);
  EXPECT_EQ(stable_hash64("s1", 1), 0x139a7eb10f8d5079ULL);
  EXPECT_EQ(mix64(1), 0x5692161d100b05e5ULL);
  // The values above were computed independently (a Python transcription of
  // the definition in stable_hash.h).
}

TEST(StableHash, LengthSeedAndPointerFormsAgree) {
  EXPECT_NE(stable_hash64(std::string_view("a\0", 2)), stable_hash64("a"));
  EXPECT_NE(stable_hash64("abc", 1), stable_hash64("abc", 2));
  const char buf[] = "0123456789abcdefXYZ";
  EXPECT_EQ(stable_hash64(std::string_view(buf, 19)), stable_hash64(std::string(buf)));
}

TEST(StableHash, NoCollisionsAndEvenLowBits) {
  std::set<uint64_t> seen;
  int buckets[16] = {};
  for (int i = 0; i < 100000; ++i) {
    uint64_t h = stable_hash64("key-" + std::to_string(i));
    seen.insert(h);
    ++buckets[h & 15];
  }
  EXPECT_EQ(seen.size(), 100000u);
  for (int b : buckets) {
    EXPECT_GT(b, 6250 - 400);
    EXPECT_LT(b, 6250 + 400);
  }
}

}  // namespace
}  // namespace sag::affinity
