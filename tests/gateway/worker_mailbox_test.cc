// WorkerMailbox (gateway/worker_mailbox.h) on an io_context with no locks,
// as a worker runs it: tasks sent from other threads run on the loop's
// thread, in order, none lost, including those sent before the loop ran.
#include "gateway/worker_mailbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace sag::gateway {
namespace {

TEST(WorkerMailboxTest, TasksFromOtherThreadsRunOnTheLoopInOrder) {
  boost::asio::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE);
  WorkerMailbox mail(io);
  std::vector<int> seen;  // the loop's thread only
  std::thread::id loop_thread;
  bool wrong_thread = false;
  mail.send([&] { seen.push_back(-1); });  // before the loop runs
  mail.start();
  std::thread loop([&] {
    loop_thread = std::this_thread::get_id();
    io.run();
  });
  constexpr int kSenders = 4, kEach = 2000;
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kEach; ++i)
        mail.send([&, v = s * kEach + i] {
          if (std::this_thread::get_id() != loop_thread) wrong_thread = true;
          seen.push_back(v);
        });
    });
  }
  for (auto& t : senders) t.join();
  mail.send([&] { io.stop(); });
  loop.join();

  ASSERT_EQ(seen.size(), size_t{kSenders * kEach + 1});
  EXPECT_EQ(seen.front(), -1);
  EXPECT_FALSE(wrong_thread);
  // Each sender's tasks in the order it sent them.
  std::vector<int> next(kSenders);
  for (size_t i = 1; i < seen.size(); ++i) {
    const int s = seen[i] / kEach;
    EXPECT_EQ(seen[i] % kEach, next[s]++) << "sender " << s;
  }
}

TEST(WorkerMailboxTest, KeepsTheLoopRunningUntilStopped) {
  boost::asio::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE);
  WorkerMailbox mail(io);
  mail.start();
  std::atomic<bool> returned{false};
  std::thread loop([&] {
    io.run();
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(returned);  // no other work, but the mailbox waits
  std::atomic<int> ran{0};
  mail.send([&] { ++ran; });
  mail.send([&] { io.stop(); });
  loop.join();
  EXPECT_TRUE(returned);
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace sag::gateway
