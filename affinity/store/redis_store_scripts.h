// The Lua scripts RedisAffinityStore runs (redis_store_core.cc): each
// write and its announcement in one script, so that announcements come in
// the order Redis applied the writes.
#pragma once

namespace sag::affinity::redis_scripts {

// The replica's marker: whether it was still there, and set again.
// KEYS[1] marker; ARGV: PX.
inline constexpr const char* kMarkScript =
    "local had = redis.call('EXISTS', KEYS[1]) "
    "redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) return had";

// Set (a change: unconditionally) and announce, atomically, so that
// announcements come in the order Redis applied the writes.
// KEYS[1] key; ARGV: server name, PX (0 = no expiry), channel, message.
inline constexpr const char* kSetScript =
    "if ARGV[2] == '0' then redis.call('SET', KEYS[1], ARGV[1]) "
    "else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end "
    "redis.call('PUBLISH', ARGV[3], ARGV[4]) return 1";
// A TTL refresh: only while the key still names the same server (or is
// gone), so it never undoes a change another replica made meanwhile.
inline constexpr const char* kRefreshScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if v and v ~= ARGV[1] then return 0 end "
    "if ARGV[2] == '0' then redis.call('SET', KEYS[1], ARGV[1]) "
    "else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end "
    "redis.call('PUBLISH', ARGV[3], ARGV[4]) return 1";
// KEYS[1] key; ARGV: channel, message.
inline constexpr const char* kDeleteScript =
    "redis.call('DEL', KEYS[1]) redis.call('PUBLISH', ARGV[1], ARGV[2]) return 1";
// Value and PTTL of each key, flattened (a missing value is nil).
inline constexpr const char* kLoadScript =
    "local out = {} for i, k in ipairs(KEYS) do "
    "out[2 * i - 1] = redis.call('GET', k) out[2 * i] = redis.call('PTTL', k) end return out";

// A claim (AffinityStore::claim): set and announce only if the key is
// absent; else nothing changes and the reply is {value, PTTL}, so the
// replica that lost adopts the winner's entry. 1 when set.
// KEYS[1] key; ARGV: server name, PX (0 = no expiry), channel, message.
inline constexpr const char* kClaimScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if v then return {v, redis.call('PTTL', KEYS[1])} end "
    "if ARGV[2] == '0' then redis.call('SET', KEYS[1], ARGV[1]) "
    "else redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end "
    "redis.call('PUBLISH', ARGV[3], ARGV[4]) return 1";

}  // namespace sag::affinity::redis_scripts
