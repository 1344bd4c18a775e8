// Per-thread pool of I/O blocks for TLS streams: a write's coalescing
// buffer, and the record buffers of a TLS 1.3 connection once OpenSSL has
// handed it over (RecordStream). Blocks are taken while bytes are in flight
// and given back as soon as they are empty, so an idle connection holds
// none, and steady-state traffic never reaches malloc.
//
// Contract: thread-local; a block goes back to the thread that took it
// (connections never change threads). kIoBlockSize holds one whole TLS
// record in either direction: the largest ciphertext a peer may send, or
// a full 16 KiB plaintext sealed with a KeyUpdate record before it.
#pragma once

#include <cstddef>

namespace sag::tls {

inline constexpr std::size_t kIoBlockSize = 17 * 1024;

char* take_io_block();
void give_io_block(char* block) noexcept;
// Blocks ever allocated on this thread (tests).
std::size_t io_blocks_allocated() noexcept;

}  // namespace sag::tls
