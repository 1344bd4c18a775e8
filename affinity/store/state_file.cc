#include "affinity/store/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string_view>
#include <unordered_map>

#include "affinity/model/server.h"

namespace sag::affinity {

namespace {

constexpr std::string_view kMagic = "SAGSTAT2";
constexpr std::string_view kMagicV1 = "SAGSTAT1";  // without admin records
constexpr size_t kEntryBytes = 32;
constexpr size_t kSumBytes = 16;
// The checksum detects damage, it authenticates nothing (the file is the
// gateway's own, mode 0600): a fixed, public key.
constexpr MemoryAffinityStore::HashKey kSumKey{0x7361672073746174ULL, 0x652066696c652031ULL};
constexpr int64_t kNoExpiryOnDisk = -1;

void put_u16(std::string& o, uint16_t v) {
  for (int i = 0; i < 2; ++i) o.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u32(std::string& o, uint32_t v) {
  for (int i = 0; i < 4; ++i) o.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& o, uint64_t v) {
  for (int i = 0; i < 8; ++i) o.push_back(static_cast<char>(v >> (8 * i)));
}
void put_name(std::string& o, std::string_view s) {
  put_u16(o, static_cast<uint16_t>(s.size()));
  o.append(s.substr(0, 0xffff));
}

// Bounds-checked reads; once short, every later read fails too.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool ok() const { return ok_; }
  size_t left() const { return b_.size() - at_; }
  uint64_t u(int bytes) {
    if (!ok_ || left() < static_cast<size_t>(bytes)) return fail();
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(b_[at_ + i])) << (8 * i);
    at_ += bytes;
    return v;
  }
  std::string_view bytes(size_t n) {
    if (!ok_ || left() < n) {
      fail();
      return {};
    }
    const std::string_view v = b_.substr(at_, n);
    at_ += n;
    return v;
  }
  std::string_view name() { return bytes(u(2)); }

 private:
  uint64_t fail() {
    ok_ = false;
    return 0;
  }
  std::string_view b_;
  size_t at_ = 0;
  bool ok_ = true;
};

// Saved (tag, index) -> the server's index in the current layout, or -1.
class Remap {
 public:
  Remap(const std::vector<StateFile::Backend>& saved, const StateFile::Layout& now) {
    std::map<std::string_view, const StateFile::Backend*> current;
    for (const auto& b : now) current.emplace(b.backend, &b);
    std::unordered_map<uint16_t, int> tags;  // tag -> saved backends with it
    for (const auto& b : saved) ++tags[MemoryAffinityStore::backend_tag(b.backend)];
    for (const auto& b : saved) {
      const uint16_t tag = MemoryAffinityStore::backend_tag(b.backend);
      if (tags[tag] != 1) continue;  // ambiguous: dropped
      auto it = current.find(b.backend);
      std::vector<int64_t>& to = map_[tag];
      for (const auto& server : b.servers) {
        int64_t index = -1;
        // (An empty name: an id no server had; entries naming it are gone.)
        if (it != current.end() && !server.empty()) {
          const auto& names = it->second->servers;
          for (size_t i = 0; i < names.size(); ++i)
            if (names[i] == server) index = static_cast<int64_t>(i);
        }
        to.push_back(index);
      }
    }
  }
  int64_t operator()(uint16_t tag, uint32_t server) const {
    auto it = map_.find(tag);
    if (it == map_.end() || server >= it->second.size()) return -1;
    return it->second[server];
  }

 private:
  std::unordered_map<uint16_t, std::vector<int64_t>> map_;
};

std::string sum_of(std::string_view bytes) {  // StateFile::checksum
  const auto fp = MemoryAffinityStore::siphash128(bytes, kSumKey);
  std::string o;
  put_u64(o, fp.lo);
  put_u64(o, fp.hi);
  return o;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

std::string StateFile::checksum(std::string_view body) { return sum_of(body); }

std::string StateFile::encode(const MemoryAffinityStore::HashKey& key,
                              const std::vector<MemoryAffinityStore::SavedEntry>& entries,
                              const Layout& layout, int64_t wall_ms) {
  std::string o;
  o.reserve(64 + entries.size() * kEntryBytes);
  o.append(kMagic);
  put_u64(o, static_cast<uint64_t>(wall_ms));
  put_u64(o, key.k0);
  put_u64(o, key.k1);
  put_u32(o, static_cast<uint32_t>(layout.size()));
  for (const auto& b : layout) {
    put_name(o, b.backend);
    put_u32(o, static_cast<uint32_t>(b.servers.size()));
    for (const auto& s : b.servers) put_name(o, s);
    for (size_t i = 0; i < b.servers.size(); ++i) {
      const bool known = i < b.admin.size() && !b.servers[i].empty();
      const ServerNames::Admin a = known ? b.admin[i] : ServerNames::Admin{};
      o.push_back(known ? 1 : 0);
      o.push_back(static_cast<char>(a.state));
      put_u32(o, a.weight);
      put_u32(o, a.config_weight);
    }
  }
  put_u64(o, entries.size());
  for (const auto& e : entries) {
    put_u64(o, e.fp.lo);
    put_u64(o, e.fp.hi);
    put_u64(o, static_cast<uint64_t>(e.ttl_ns == kNoExpiry ? kNoExpiryOnDisk : e.ttl_ns));
    put_u32(o, e.server);
    put_u16(o, e.backend_tag);
    put_u16(o, 0);
  }
  o += sum_of(o);
  return o;
}

bool StateFile::decode(std::string_view bytes, const Layout& layout, int64_t wall_ms, Contents& out,
                       std::string& error) {
  out = Contents{};
  const bool v1 = bytes.substr(0, kMagicV1.size()) == kMagicV1;
  if (bytes.size() < kMagic.size() + kSumBytes || (bytes.substr(0, kMagic.size()) != kMagic && !v1)) {
    error = "not a state file (no SAGSTAT2 header)";
    return false;
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kSumBytes);
  if (sum_of(body) != bytes.substr(body.size())) {
    error = "corrupt (checksum mismatch)";
    return false;
  }
  Reader r(body.substr(kMagic.size()));
  const int64_t saved_ms = static_cast<int64_t>(r.u(8));
  out.key.k0 = r.u(8);
  out.key.k1 = r.u(8);
  std::vector<Backend> saved(0);
  const uint64_t nbackends = r.u(4);
  for (uint64_t i = 0; r.ok() && i < nbackends; ++i) {
    Backend b;
    b.backend = r.name();
    const uint64_t nservers = r.u(4);
    for (uint64_t k = 0; r.ok() && k < nservers; ++k) b.servers.emplace_back(r.name());
    for (uint64_t k = 0; !v1 && r.ok() && k < nservers; ++k) {
      const bool known = r.u(1) == 1;
      const uint64_t state = r.u(1);
      ServerNames::Admin a;
      a.weight = static_cast<uint32_t>(r.u(4));
      a.config_weight = static_cast<uint32_t>(r.u(4));
      if (!known || state > static_cast<uint64_t>(AdminState::kMaint)) continue;
      a.state = static_cast<AdminState>(state);
      out.admin.push_back({b.backend, b.servers[k], a});
    }
    saved.push_back(std::move(b));
  }
  const uint64_t nentries = r.u(8);
  if (!r.ok() || nentries > r.left() / kEntryBytes || r.left() != nentries * kEntryBytes) {
    error = "corrupt (sizes do not add up)";
    out = Contents{};
    return false;
  }
  // Downtime counts against every TTL (a clock set back counts as none).
  constexpr int64_t kYearMs = int64_t{366} * 24 * 3600 * 1000;
  const int64_t gone_ms = saved_ms < 0 ? 100 * kYearMs
                          : wall_ms > saved_ms ? std::min<int64_t>(wall_ms - saved_ms, 100 * kYearMs)
                                               : 0;
  const int64_t gone_ns = gone_ms * 1000000;
  // Admin records of servers the current layout has.
  std::erase_if(out.admin, [&layout](const AdminCarry& c) {
    for (const auto& b : layout)
      if (b.backend == c.backend)
        return std::find(b.servers.begin(), b.servers.end(), c.server) == b.servers.end();
    return true;
  });
  const Remap remap(saved, layout);
  out.saved = nentries;
  out.entries.reserve(nentries);
  for (uint64_t i = 0; i < nentries; ++i) {
    MemoryAffinityStore::SavedEntry e;
    e.fp.lo = r.u(8);
    e.fp.hi = r.u(8);
    const auto ttl = static_cast<int64_t>(r.u(8));
    e.server = static_cast<ServerId>(r.u(4));
    e.backend_tag = static_cast<uint16_t>(r.u(2));
    r.u(2);
    if (ttl == kNoExpiryOnDisk) {
      e.ttl_ns = kNoExpiry;
    } else if (ttl <= gone_ns) {
      ++out.expired;
      continue;
    } else {
      e.ttl_ns = ttl - gone_ns;
    }
    const int64_t to = remap(e.backend_tag, e.server);
    if (to < 0) {
      ++out.server_gone;
      continue;
    }
    e.server = static_cast<ServerId>(to);
    out.entries.push_back(e);
  }
  return true;
}

bool StateFile::save(const std::string& path, const MemoryAffinityStore& store, const Layout& layout,
                     TimePoint now, int64_t wall_ms, size_t& written, std::string& error) {
  const auto entries = store.live_entries(now);
  const std::string bytes = encode(store.hash_key(), entries, layout, wall_ms);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = tmp + ": " + errno_text();
    return false;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool ok = done == bytes.size() && ::fsync(fd) == 0;
  const std::string why = errno_text();
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = (ok ? path : tmp) + ": " + (ok ? errno_text() : why);
    ::unlink(tmp.c_str());
    return false;
  }
  written = entries.size();
  return true;
}

bool StateFile::load(const std::string& path, const Layout& layout, int64_t wall_ms, Contents& out,
                     std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = errno_text();
    return false;
  }
  std::string bytes;
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = errno_text();
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return decode(bytes, layout, wall_ms, out, error);
}

}  // namespace sag::affinity
