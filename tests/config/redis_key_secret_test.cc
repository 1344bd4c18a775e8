// affinity_store.redis.key_secret_file (issue 16): the secret Redis keys of
// learned sessions and client addresses are hashed under. Its first line,
// the file resolved against the config's directory; a missing or empty one
// is an error at the key's value, as for password_file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/config_loader.h"

namespace sag::config {
namespace {

class RedisKeySecretTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sag-keysecret-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void write(const std::string& name, const std::string& text) {
    std::filesystem::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  LoadResult load(const std::string& redis_line) {
    const std::string yaml =
        "listeners:\n"
        "  - {name: http, bind: \"127.0.0.1:0\", backend: app}\n"
        "backends:\n"
        "  - name: app\n"
        "    servers: [{name: s1, address: \"127.0.0.1:9001\"}]\n"
        "affinity_store:\n"
        "  type: redis\n"
        "  redis:\n"
        "    " + redis_line + "\n";
    return ConfigLoader::load_string(yaml, "t.yaml", dir_.string());
  }
  std::filesystem::path dir_;
};

TEST_F(RedisKeySecretTest, FirstLineOfTheFileResolvedAgainstTheConfigDirectory) {
  write("sub/key.secret", "  the secret \r\nsecond line\n");
  auto r = load("key_secret_file: sub/key.secret");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.config->affinity_store.redis.key_secret_file, "sub/key.secret");
  EXPECT_EQ(r.config->affinity_store.redis.key_secret, "  the secret ");  // the line's bytes, less its end
}

TEST_F(RedisKeySecretTest, AbsentByDefault) {
  auto r = load("key_prefix: \"gw:\"");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  EXPECT_EQ(r.config->affinity_store.redis.key_secret_file, "");
  EXPECT_EQ(r.config->affinity_store.redis.key_secret, "");
}

TEST_F(RedisKeySecretTest, MissingOrEmptyFileIsAnErrorAtItsValue) {
  auto missing = load("key_secret_file: nope.secret");
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(missing.errors[0].to_string(), "t.yaml:9:22: 'key_secret_file': cannot read '" +
                                               (dir_ / "nope.secret").string() + "': No such file or directory");
  write("empty.secret", "\nsecret on the second line\n");
  auto empty = load("key_secret_file: empty.secret");
  ASSERT_EQ(empty.errors.size(), 1u);
  EXPECT_EQ(empty.errors[0].to_string(),
            "t.yaml:9:22: 'key_secret_file': the first line of '" + (dir_ / "empty.secret").string() + "' is empty");
}

}  // namespace
}  // namespace sag::config
