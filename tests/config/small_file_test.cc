#include "config/small_file.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace sag::config {
namespace {

class SmallFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sag-small-file-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string write(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  std::string dir_;
};

TEST_F(SmallFileTest, ReadsUpToTheLimitAndRefusesMore) {
  std::string why;
  EXPECT_EQ(read_small_file(write("empty", ""), why, 10), std::string());
  EXPECT_EQ(read_small_file(write("at", "0123456789"), why, 10), std::string("0123456789"));
  EXPECT_FALSE(read_small_file(write("over", "0123456789x"), why, 10));
  EXPECT_EQ(why, "larger than 10 bytes");
  // Larger than the first guess and than the growth steps: read whole.
  const std::string big(100000, 'b');
  EXPECT_EQ(read_small_file(write("big", big), why, 1 << 20), big);
}

TEST_F(SmallFileTest, ReadsAFileLongerThanItsReportedSize) {
  // /proc files are regular files that report size 0.
  std::string why;
  const auto status = read_small_file("/proc/self/status", why, 1 << 20);
  ASSERT_TRUE(status) << why;
  EXPECT_NE(status->find("Pid:"), std::string::npos);
  EXPECT_FALSE(read_small_file("/proc/self/status", why, 16));
}

TEST_F(SmallFileTest, RefusesWhatIsNoRegularFile) {
  std::string why;
  EXPECT_FALSE(read_small_file(dir_, why, 100));
  EXPECT_EQ(why, "not a regular file");
  EXPECT_FALSE(read_small_file(dir_ + "/missing", why, 100));
  EXPECT_FALSE(why.empty());
}

}  // namespace
}  // namespace sag::config
