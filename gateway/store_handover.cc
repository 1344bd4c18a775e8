#include "gateway/store_handover.h"

#include <chrono>

#include "affinity/store/state_file.h"
#include "gateway/log.h"

namespace sag::gateway {

using affinity::StateFile;

int64_t StoreHandover::unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void StoreHandover::restore_admin(const std::vector<StateFile::AdminCarry>& saved,
                                  const std::string& from) {
  for (const auto& c : saved) {
    const affinity::Backend* b = backends_->find(c.backend);
    affinity::Server* s = b ? b->find_server(c.server) : nullptr;
    if (!s) continue;
    const bool weight = c.admin.config_weight == s->config_weight() && c.admin.weight != s->weight();
    if (c.admin.state == s->admin_state() && !weight) continue;
    s->set_admin_state(c.admin.state);
    if (weight) s->set_weight(c.admin.weight);
    log_info(from + ": server " + c.backend + "/" + c.server + " " + affinity::to_string(c.admin.state) +
             ", weight " + std::to_string(s->weight()) + " (as the admin API left it)");
  }
}

void StoreHandover::load(const std::string& path) {
  if (path.empty() || !store_) return;
  StateFile::Contents got;
  std::string error;
  if (!StateFile::load(path, backends_->server_names(), unix_ms(), got, error)) {
    log_warning("state file " + path + ": " + error + "; starting with an empty affinity store");
    return;
  }
  restore_admin(got.admin, "state file " + path);
  store_->adopt(got.key, got.entries, clock_.steady_now());
  log_info("state file " + path + ": " + std::to_string(got.entries.size()) + " of " +
           std::to_string(got.saved) + " affinity entries loaded (" + std::to_string(got.expired) +
           " expired since the save, " + std::to_string(got.server_gone) +
           " for servers no longer configured)");
}

void StoreHandover::save(const std::string& path) {
  if (path.empty() || !store_) return;
  size_t written = 0;
  std::string error;
  if (StateFile::save(path, *store_, backends_->server_names(), clock_.steady_now(), unix_ms(),
                      written, error)) {
    log_info("state file " + path + ": " + std::to_string(written) + " affinity entries saved");
  } else {
    log_error("state file " + path + ": not saved: " + error);
  }
}

void StoreHandover::take_key(UpgradeHandover& handover) {
  affinity::MemoryAffinityStore::HashKey key;
  if (!handover.read_store_key(key)) {
    log_warning("upgrade: no affinity store key from the old process; its entries can't be taken over");
    return;
  }
  if (store_) store_->adopt(key, {}, clock_.steady_now());
}

void StoreHandover::merge(const std::string& image, const StateFile::Layout& layout, bool admin) {
  StateFile::Contents got;
  std::string error;
  if (!StateFile::decode(image, layout, unix_ms(), got, error)) {
    log_warning("upgrade: affinity entries from the old process: " + error);
    return;
  }
  if (admin) restore_admin(got.admin, "upgrade");
  const size_t added = store_->merge(got.entries, clock_.steady_now());
  log_info("upgrade: " + std::to_string(added) + " of " + std::to_string(got.saved) +
           " affinity entries from the old process taken over (" +
           std::to_string(got.server_gone) + " for servers no longer configured)");
}

void StoreHandover::take_entries(UpgradeHandover& handover) {
  std::string image;
  if (!handover.read_image(image)) {
    log_warning("upgrade: no affinity entries from the old process");
    return;
  }
  // The old process's admin state, before the first request (its later
  // entries, after this process serves, come without: the admin API here
  // may have changed it since).
  if (store_) merge(image, backends_->server_names(), true);
}

void StoreHandover::take_rest(UpgradeHandover& handover) {
  handover.ready();
  log_info("upgrade: serving; the old process stops and hands over the rest of its affinity entries");
  if (!store_) return;
  handover.receive([this, layout = backends_->server_names()](const std::string& image) {
    merge(image, layout, false);
  });
}

bool StoreHandover::send_entries(BinaryUpgrade& upgrade) {
  // Without a memory store an empty image: the new process waits for one.
  if (!store_) return upgrade.send_image(StateFile::encode({}, {}, {}, unix_ms()));
  const auto now = clock_.steady_now();
  return upgrade.send_image(StateFile::encode(store_->hash_key(), store_->live_entries(now),
                                              backends_->server_names(), unix_ms()));
}

}  // namespace sag::gateway
