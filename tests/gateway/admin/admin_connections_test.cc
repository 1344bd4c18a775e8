// AdminConnections: the limit, who is evicted when it is reached (the member
// waiting longest), that answering members are never evicted, and that
// members leave the set when destroyed.
#include "gateway/admin/admin_connections.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace sag::gateway {
namespace {

using Admission = AdminConnections::Admission;

struct Fake final : AdminConnections::Member {
  Fake(std::string n, std::vector<std::string>* log) : name(std::move(n)), evictions(log) {}
  void evict() override { evictions->push_back(name); }
  std::string name;
  std::vector<std::string>* evictions;
};

class AdminConnectionsTest : public ::testing::Test {
 protected:
  Fake& make(const std::string& name) {
    members.push_back(std::make_unique<Fake>(name, &evicted));
    return *members.back();
  }
  std::vector<std::string> evicted;
  AdminConnections set{3};  // declared before `members`, so it outlives them
  std::vector<std::unique_ptr<Fake>> members;
};

TEST_F(AdminConnectionsTest, AdmitsUpToTheLimitThenEvictsTheOldestWaiting) {
  Fake& a = make("a");
  Fake& b = make("b");
  Fake& c = make("c");
  EXPECT_EQ(set.admit(a), Admission::kAdmitted);
  EXPECT_EQ(set.admit(b), Admission::kAdmitted);
  EXPECT_EQ(set.admit(c), Admission::kAdmitted);
  EXPECT_EQ(set.size(), 3u);
  EXPECT_TRUE(evicted.empty());

  Fake& d = make("d");
  EXPECT_EQ(set.admit(d), Admission::kAdmittedByEviction);
  EXPECT_EQ(evicted, std::vector<std::string>{"a"});
  EXPECT_TRUE(a.evicted());
  EXPECT_FALSE(b.evicted());
  EXPECT_EQ(set.size(), 3u);
  // An evicted member's calls change nothing; it is counted no more.
  a.waiting();
  a.answering();
  EXPECT_EQ(set.size(), 3u);

  Fake& e = make("e");
  EXPECT_EQ(set.admit(e), Admission::kAdmittedByEviction);
  EXPECT_EQ(evicted, (std::vector<std::string>{"a", "b"}));
}

TEST_F(AdminConnectionsTest, WaitingAgainMovesAMemberToTheBack) {
  Fake& a = make("a");
  Fake& b = make("b");
  Fake& c = make("c");
  set.admit(a);
  set.admit(b);
  set.admit(c);
  // a answered a request and waits for its next one: now the newest.
  a.answering();
  a.waiting();
  set.admit(make("d"));
  set.admit(make("e"));
  EXPECT_EQ(evicted, (std::vector<std::string>{"b", "c"}));
  set.admit(make("f"));
  EXPECT_EQ(evicted, (std::vector<std::string>{"b", "c", "a"}));
}

TEST_F(AdminConnectionsTest, AnsweringMembersAreNeverEvicted) {
  Fake& a = make("a");
  Fake& b = make("b");
  Fake& c = make("c");
  set.admit(a);
  set.admit(b);
  set.admit(c);
  a.answering();
  c.answering();
  EXPECT_EQ(set.admit(make("d")), Admission::kAdmittedByEviction);
  EXPECT_EQ(evicted, std::vector<std::string>{"b"});
  members.back()->answering();
  // Every member answering: the newcomer is refused, nobody is evicted.
  Fake& e = make("e");
  EXPECT_EQ(set.admit(e), Admission::kRefused);
  EXPECT_EQ(evicted, std::vector<std::string>{"b"});
  EXPECT_FALSE(e.evicted());
  EXPECT_EQ(set.size(), 3u);
  // One of them done with its answer and waiting again: evictable again.
  c.waiting();
  EXPECT_EQ(set.admit(e), Admission::kAdmittedByEviction);
  EXPECT_EQ(evicted, (std::vector<std::string>{"b", "c"}));
}

TEST_F(AdminConnectionsTest, DestroyedMembersLeave) {
  auto a = std::make_unique<Fake>("a", &evicted);
  auto b = std::make_unique<Fake>("b", &evicted);
  auto c = std::make_unique<Fake>("c", &evicted);
  set.admit(*a);
  set.admit(*b);
  set.admit(*c);
  b->answering();
  b.reset();  // answering when it left
  a.reset();  // waiting when it left (the oldest)
  EXPECT_EQ(set.size(), 1u);
  EXPECT_EQ(set.admit(make("d")), Admission::kAdmitted);
  EXPECT_EQ(set.admit(make("e")), Admission::kAdmitted);
  EXPECT_EQ(set.admit(make("f")), Admission::kAdmittedByEviction);
  EXPECT_EQ(evicted, std::vector<std::string>{"c"});
  c.reset();  // evicted, then destroyed: counted once only
  EXPECT_EQ(set.size(), 3u);
  // A member never admitted (refused) leaves nothing behind either.
  for (auto& m : members) m->answering();
  {
    Fake refused("r", &evicted);
    EXPECT_EQ(set.admit(refused), Admission::kRefused);
  }
  EXPECT_EQ(set.size(), 3u);
}

TEST(AdminConnectionsLimitTest, ManyMoreThanTheLimit) {
  std::vector<std::string> evicted;
  AdminConnections set(64);
  std::vector<std::unique_ptr<Fake>> members;
  for (int i = 0; i < 250; ++i) {
    members.push_back(std::make_unique<Fake>(std::to_string(i), &evicted));
    EXPECT_NE(set.admit(*members.back()), Admission::kRefused);
    EXPECT_LE(set.size(), 64u);
  }
  ASSERT_EQ(evicted.size(), 250u - 64u);
  for (size_t i = 0; i < evicted.size(); ++i) EXPECT_EQ(evicted[i], std::to_string(i));
  members.clear();
  EXPECT_EQ(set.size(), 0u);
}

}  // namespace
}  // namespace sag::gateway
