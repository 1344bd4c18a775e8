// `affinity_store.state_file` (docs/behaviour.md#state-file): the memory
// store's live entries, written at a graceful stop and read back by the
// next start before its listeners open, so a restart without Redis keeps
// every learned session and source pin.
//
// - Servers travel by name: an entry is saved with its backend's tag and its
//   server's index, and the file lists every backend's server names in
//   index order. Reading maps each entry to the server of the same backend
//   and name in the current config, wherever it now stands; an entry whose
//   server or backend is gone is dropped (its next request is balanced
//   anew, as for a server that is down). Two saved backends with the same
//   16-bit tag make their entries ambiguous: those are dropped too.
// - TTLs: each entry keeps the time it had left, less the wall-clock time
//   between the save and the read (an entry that expired meanwhile is
//   dropped).
// - The file holds the store's fingerprint key (without it, no key would
//   find its entry again): it is written with mode 0600, to a temporary
//   file beside it that is synced and then renamed over it, so a crash
//   mid-write leaves the previous file whole.
// - Admin state: each server's state (ready, drain, maint) and weight as
//   the admin API left them, so a server drained before a restart or an
//   upgrade is still drained after it. A weight is restored only where the
//   config still gives the server the weight it gave at the save (a changed
//   file wins).
// - Format: little-endian, "SAGSTAT2", the save time (Unix ms), the key, the
//   backends (name, server names, then per server: known u8, state u8,
//   weight u32, configured weight u32), the entries (32 bytes each), and a
//   SipHash-2-4-128 of everything before it. "SAGSTAT1" (no admin records)
//   is read too. A file that is short, long, unknown or whose checksum fails
//   is refused whole (corrupt); nothing of it is used.
//
// Thread: any; the store must not be in use while it is adopted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "affinity/model/backend.h"
#include "affinity/store/memory_affinity_store.h"

namespace sag::affinity {

class StateFile {
 public:
  // Every backend's server names by ServerId (BackendSet::server_names()).
  using Backend = ServerNames;
  using Layout = std::vector<ServerNames>;

  // A server's admin state as saved, for a server the current layout has.
  struct AdminCarry {
    std::string backend, server;
    ServerNames::Admin admin;
  };

  struct Contents {
    MemoryAffinityStore::HashKey key;
    std::vector<AdminCarry> admin;
    std::vector<MemoryAffinityStore::SavedEntry> entries;  // mapped to the current layout
    size_t saved = 0;          // entries in the file
    size_t expired = 0;        // expired since the save
    size_t server_gone = 0;    // their backend or server is no longer configured
  };

  // Writes `store`'s live entries at `now` (steady) with `layout`; the
  // save time is `wall_ms` (Unix ms). False with `error` set when the file
  // cannot be written (the previous one, if any, is then left as it was).
  static bool save(const std::string& path, const MemoryAffinityStore& store, const Layout& layout,
                   TimePoint now, int64_t wall_ms, size_t& written, std::string& error);
  // Reads `path` for a store of `layout` at `wall_ms`. False with `error`
  // set when it is missing, unreadable or corrupt.
  static bool load(const std::string& path, const Layout& layout, int64_t wall_ms, Contents& out,
                   std::string& error);

  // The same two on bytes in memory (the file's whole contents), for tests
  // and the fuzzer.
  static std::string encode(const MemoryAffinityStore::HashKey& key,
                            const std::vector<MemoryAffinityStore::SavedEntry>& entries,
                            const Layout& layout, int64_t wall_ms);
  static bool decode(std::string_view bytes, const Layout& layout, int64_t wall_ms, Contents& out,
                     std::string& error);
  // The 16 bytes that end a file whose other bytes are `body` (the fuzzer
  // makes bodies that pass the check with it).
  static std::string checksum(std::string_view body);
};

}  // namespace sag::affinity
