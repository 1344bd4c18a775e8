// copy_short: every length up to past its largest inline case, into the
// middle of a guarded buffer, so a copy short by a byte or past its end
// shows.
#include "config/base/copy_short.h"

#include <string>

#include <gtest/gtest.h>

namespace sag::base {
namespace {

TEST(CopyShort, EveryLengthExactlyThoseBytes) {
  std::string src(80, '\0');
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<char>('A' + i % 50);
  for (size_t n = 0; n <= 70; ++n) {
    for (size_t from : {size_t{0}, size_t{3}, size_t{9}}) {
      std::string dst(n + 16, '.');
      copy_short(dst.data() + 8, src.data() + from, n);
      const std::string expect = std::string(8, '.') + src.substr(from, n) + std::string(8, '.');
      ASSERT_EQ(dst, expect) << "n=" << n << " from=" << from;
    }
  }
}

}  // namespace
}  // namespace sag::base
