// nghttp2_pooled_memory (session/http2/nghttp2_memory.h): the allocator
// nghttp2 gets behaves as malloc/calloc/realloc/free, small and large.
#include "session/http2/nghttp2_memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

namespace sag::session {
namespace {

TEST(Nghttp2Memory, BehavesAsTheCLibrary) {
  nghttp2_mem* m = nghttp2_pooled_memory();
  for (size_t size : {1u, 48u, 100u, 4000u, 4080u, 4081u, 70000u}) {
    auto* p = static_cast<unsigned char*>(m->malloc(size, m->mem_user_data));
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignof(std::max_align_t), 0u);
    std::memset(p, 0xab, size);
    // Grown and shrunk: the common prefix is kept.
    auto* q = static_cast<unsigned char*>(m->realloc(p, size * 2 + 10, m->mem_user_data));
    ASSERT_NE(q, nullptr);
    for (size_t i = 0; i < size; ++i) ASSERT_EQ(q[i], 0xab) << size << " at " << i;
    auto* r = static_cast<unsigned char*>(m->realloc(q, size / 2 + 1, m->mem_user_data));
    ASSERT_NE(r, nullptr);
    for (size_t i = 0; i < size / 2 + 1; ++i) ASSERT_EQ(r[i], 0xab);
    m->free(r, m->mem_user_data);

    auto* z = static_cast<unsigned char*>(m->calloc(3, size, m->mem_user_data));
    ASSERT_NE(z, nullptr);
    for (size_t i = 0; i < 3 * size; ++i) ASSERT_EQ(z[i], 0) << size;
    m->free(z, m->mem_user_data);
  }
  m->free(nullptr, m->mem_user_data);
  void* fresh = m->realloc(nullptr, 32, m->mem_user_data);  // realloc(NULL) is malloc
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(m->realloc(fresh, 0, m->mem_user_data), nullptr);  // realloc(p, 0) frees
  EXPECT_EQ(m->calloc(SIZE_MAX / 2, 4, m->mem_user_data), nullptr);  // overflow refused
}

}  // namespace
}  // namespace sag::session
