// The memory store's entries across a restart (affinity_store.state_file)
// and across a binary upgrade (handed from the old process to the new one;
// upgrade_handover.h, binary_upgrade.h). Each step logs what it did and is
// never fatal: at worst the gateway starts with an empty store.
//
// `store` may be null (a Redis store: it keeps its entries itself), and
// then every step does nothing.
//
// Thread: the main thread; receive()'s merges run on the handover's thread.
#pragma once

#include <string>
#include <vector>

#include "affinity/clock.h"
#include "affinity/model/backend.h"
#include "affinity/store/memory_affinity_store.h"
#include "affinity/store/state_file.h"
#include "gateway/binary_upgrade.h"
#include "gateway/upgrade_handover.h"

namespace sag::gateway {

class StoreHandover {
 public:
  StoreHandover(affinity::MemoryAffinityStore* store, const affinity::BackendSet& backends,
                const affinity::Clock& clock)
      : store_(store), backends_(&backends), clock_(clock) {}

  // Start-up, before any listener opens: the state file's entries.
  void load(const std::string& state_file);
  // A reload: servers are named by `backends` from now on (main thread).
  void set_backends(const affinity::BackendSet& backends) { backends_ = &backends; }
  // Graceful stop, once no worker runs: the live entries to the state file.
  void save(const std::string& state_file);

  // New process, before the store is used: the old process's fingerprint
  // key (read even without a memory store, to keep the channel in step).
  void take_key(UpgradeHandover& handover);
  // New process, once it has its sockets and before it accepts: the old
  // one's entries as they are now.
  void take_entries(UpgradeHandover& handover);
  // New process, once it serves: tells the old one, and merges the entries
  // it sends after its drain.
  void take_rest(UpgradeHandover& handover);
  // Old process, when the new one asks, and once more after the drain: the
  // live entries now. False when the new process is gone.
  bool send_entries(BinaryUpgrade& upgrade);

 private:
  static int64_t unix_ms();
  // `admin`: the image's admin state applies too (the first image only).
  void merge(const std::string& image, const affinity::StateFile::Layout& layout, bool admin);
  // Servers' admin state as a state file or the old process left it; `from`
  // names the source in the log.
  void restore_admin(const std::vector<affinity::StateFile::AdminCarry>& saved, const std::string& from);

  affinity::MemoryAffinityStore* store_;
  const affinity::BackendSet* backends_;
  const affinity::Clock& clock_;
};

}  // namespace sag::gateway
