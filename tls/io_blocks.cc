#include "tls/io_blocks.h"

#include <cstring>
#include <new>

namespace sag::tls {
namespace {

// A few blocks are kept for reuse; more, needed only while that many
// connections have bytes in flight at once, are freed when returned. The
// free blocks hold the list's links.
constexpr int kKeepBlocks = 16;

struct FreeBlocks {
  char* head = nullptr;
  int count = 0;
  std::size_t allocated = 0;
  ~FreeBlocks() {
    while (head != nullptr) {
      char* next;
      std::memcpy(&next, head, sizeof next);
      ::operator delete(head);
      head = next;
    }
  }
};
thread_local FreeBlocks free_blocks;

}  // namespace

char* take_io_block() {
  FreeBlocks& f = free_blocks;
  if (f.head == nullptr) {
    ++f.allocated;
    return static_cast<char*>(::operator new(kIoBlockSize));
  }
  char* b = f.head;
  std::memcpy(&f.head, b, sizeof f.head);
  --f.count;
  return b;
}

void give_io_block(char* block) noexcept {
  FreeBlocks& f = free_blocks;
  if (f.count >= kKeepBlocks) {
    ::operator delete(block);
    return;
  }
  std::memcpy(block, &f.head, sizeof f.head);
  f.head = block;
  ++f.count;
}

std::size_t io_blocks_allocated() noexcept { return free_blocks.allocated; }

}  // namespace sag::tls
