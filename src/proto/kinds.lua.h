/* kinds.lua.h - the scripts of the other kinds of locks: semaphores and
 * read-write locks (one family, "SEM"), and multi-locks ("MULTI").
 *
 * Sent like the mutex scripts (scripts.lua.h): EVALSHA, EVAL after
 * NOSCRIPT; names, tokens and metadata only as KEYS/ARGV. Every key a
 * script touches is one of its KEYS (tests/regress/test_declared_keys.c).
 *
 * SEM family: a semaphore of N permits, or a read-write lock (a semaphore
 * whose readers take one permit each, with no limit, and whose writer
 * takes them all). Keys, all in the hash slot of {name}:
 *   KEYS[1] P{name}        zset: holder token -> lease expiry (server ms).
 *                          Its TYPE tells the kinds apart: a mutex keeps a
 *                          hash there, so a mutex script on a held
 *                          semaphore fails with WRONGTYPE, and these
 *                          scripts refuse a name held as a mutex.
 *   KEYS[2] P{name}:h      hash: token -> "fence want acquired_ms meta";
 *                          _k -> what the holders are: "sem", "rws" (rw
 *                          readers) or "rwx" (an rw writer); _n -> the
 *                          permits of the last semaphore grant
 *   KEYS[3] P{name}:fence  the fencing counter, shared with the mutex
 *   KEYS[4] P{name}:pq     zset of waiting tokens, scored by arrival (us)
 *   KEYS[5] P{name}:pqi    hash token -> "expiry_ms ttl_ms fencing chan want meta"
 * want: "s<N>" a semaphore permit of N, "r0" rw shared, "r1" rw exclusive.
 *
 * Every script first settles the state (settle): holders whose lease has
 * ended (score <= now) are removed (prune), so a crashed holder's permit
 * returns when its lease ends; then the queue is served in FIFO order
 * (promote): while its live head fits, the head is granted (with its own
 * ttl, fence and metadata) and woken on its channel with "<token>
 * <fence>". RELEASE prunes, removes the caller, then promotes. So a release
 * admits as many waiters as now fit, oldest first, and a head that does
 * not fit (a writer behind readers, a semaphore that is full) stops
 * everyone behind it: no barging, and the readers queued between two
 * writers are admitted together. The keys expire with the last lease
 * (PEXPIREAT of the highest score), so nothing stays behind.
 *
 * MULTI family: several mutexes taken all or nothing by one script. KEYS
 * are the four mutex keys of each name in turn (P{n}, P{n}:fence, P{n}:q,
 * P{n}:qi: scripts.lua.h), so a multi-lock and a plain mutex on the same
 * name exclude each other and share the queue and the hand-over. On
 * Cluster all names of one script must share a hash slot.
 */
#ifndef DLOCK_KINDS_LUA_H
#define DLOCK_KINDS_LUA_H

/* ---- SEM family ---- */

#define DL_LUA_SEM_PRELUDE                                                          \
    "local tm = redis.call('TIME')\n"                                               \
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"     \
    "local function foreign()\n"                                                    \
    "  local ty = redis.call('TYPE', KEYS[1])['ok']\n"                              \
    "  return ty ~= 'none' and ty ~= 'zset'\n"                                      \
    "end\n"                                                                         \
    "local function qleave(tok)\n"                                                  \
    "  redis.call('ZREM', KEYS[4], tok)\n"                                          \
    "  redis.call('HDEL', KEYS[5], tok)\n"                                          \
    "end\n"                                                                         \
    "local function qhead()\n"                                                      \
    "  local h = redis.call('ZRANGE', KEYS[4], 0, 0)[1]\n"                          \
    "  while h do\n"                                                                \
    "    local v = redis.call('HGET', KEYS[5], h)\n"                                \
    "    if v and (tonumber(string.match(v, '^(%d+)')) or 0) > now then return h, v end\n" \
    "    qleave(h)\n"                                                               \
    "    h = redis.call('ZRANGE', KEYS[4], 0, 0)[1]\n"                              \
    "  end\n"                                                                       \
    "  return false\n"                                                              \
    "end\n"                                                                         \
    "local function fits(w)\n"                                                      \
    "  local n = redis.call('ZCARD', KEYS[1])\n"                                    \
    "  if n == 0 then return true end\n"                                            \
    "  local k = redis.call('HGET', KEYS[2], '_k')\n"                               \
    "  if string.sub(w, 1, 1) == 's' then\n"                                        \
    "    return k == 'sem' and n < (tonumber(string.sub(w, 2)) or 0)\n"             \
    "  end\n"                                                                       \
    "  return w == 'r0' and k == 'rws'\n"                                           \
    "end\n"                                                                         \
    "local function grant(tok, ttl, fencing, w, meta, at)\n"                        \
    "  local f, k = 0, 'sem'\n"                                                     \
    "  if w == 'r0' then k = 'rws' elseif w == 'r1' then k = 'rwx' end\n"           \
    "  if fencing == '1' and k == 'rws' then\n"                                     \
    "    f = tonumber(redis.call('GET', KEYS[3])) or 0\n"                           \
    "  elseif fencing == '1' then\n"                                                \
    "    f = redis.call('INCR', KEYS[3])\n"                                         \
    "  end\n"                                                                       \
    "  redis.call('ZADD', KEYS[1], now + tonumber(ttl), tok)\n"                     \
    "  local v = f .. ' ' .. w .. ' ' .. at .. ' ' .. meta\n"                     \
    "  if k == 'sem' then\n"                                                        \
    "    redis.call('HSET', KEYS[2], tok, v, '_k', k, '_n', string.sub(w, 2))\n"   \
    "  else\n"                                                                      \
    "    redis.call('HSET', KEYS[2], tok, v, '_k', k)\n"                            \
    "  end\n"                                                                       \
    "  return f\n"                                                                  \
    "end\n"                                                                         \
    "local function prune()\n"                                                      \
    "  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)\n"            \
    "  if #gone == 0 then return end\n"                                             \
    "  for i = 1, #gone do redis.call('HDEL', KEYS[2], gone[i]) end\n"              \
    "  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"                      \
    "  if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end\n"  \
    "end\n"                                                                         \
    "local function promote()\n"                                                    \
    "  while true do\n"                                                             \
    "    local h, v = qhead()\n"                                                    \
    "    if not h then return false end\n"                                          \
    "    local ttl, fencing, chan, w, meta =\n"                                     \
    "      string.match(v, '^%d+ (%d+) (%d) (%S+) (%S+) (.*)$')\n"                  \
    "    if ttl and not fits(w) then return h end\n"                                \
    "    qleave(h)\n"                                                               \
    "    if ttl then\n"                                                             \
    "      local f = grant(h, ttl, fencing, w, meta, now)\n"                        \
    "      redis.pcall('PUBLISH', chan, h .. ' ' .. f)\n"                           \
    "    end\n"                                                                     \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "local function settle()\n"                                                     \
    "  prune()\n"                                                                   \
    "  return promote()\n"                                                          \
    "end\n"                                                                         \
    "local function expiry()\n"                                                     \
    "  local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]\n"        \
    "  if top then\n"                                                               \
    "    redis.call('PEXPIREAT', KEYS[1], top)\n"                                   \
    "    redis.call('PEXPIREAT', KEYS[2], top)\n"                                   \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "local function lease(tok)\n"                                                   \
    "  if not redis.call('ZSCORE', KEYS[1], tok) then return false end\n"           \
    "  local v = redis.call('HGET', KEYS[2], tok)\n"                                \
    "  return tonumber(v and string.match(v, '^(%d+)')) or 0\n"                     \
    "end\n"

/* SEM_ACQUIRE: ARGV token, ttl_ms, meta, fencing (0 off, 1 on), enqueue
 * (0|1), wait_ms, acquired_ms, wake channel, want. Returns {1, fence}
 * (held now; also when already held: idempotent), or {0, hint_ms,
 * waiters}: hint_ms is when the first lease ends (-1: none). An error
 * reply WRONGTYPE when the name is held as another kind. */
#define DL_LUA_SEM_ACQUIRE                                                          \
    DL_LUA_SEM_PRELUDE                                                              \
    "if foreign() then\n"                                                           \
    "  return redis.error_reply('WRONGTYPE the name is held as a mutex')\n"         \
    "end\n"                                                                         \
    "local h = settle()\n"                                                          \
    "local f = lease(ARGV[1])\n"                                                    \
    "if f then\n"                                                                   \
    "  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])\n"       \
    "  qleave(ARGV[1])\n"                                                           \
    "  expiry()\n"                                                                  \
    "  return {1, f}\n"                                                             \
    "end\n"                                                                         \
    "local k = redis.call('HGET', KEYS[2], '_k')\n"                                 \
    "if k and (k == 'sem') ~= (string.sub(ARGV[9], 1, 1) == 's') then\n"            \
    "  return redis.error_reply('WRONGTYPE the name is held as a ' ..\n"            \
    "    (k == 'sem' and 'semaphore' or 'read-write lock'))\n"                      \
    "end\n"                                                                         \
    "if (not h or h == ARGV[1]) and fits(ARGV[9]) then\n"                           \
    "  qleave(ARGV[1])\n"                                                           \
    "  f = grant(ARGV[1], ARGV[2], ARGV[4], ARGV[9], ARGV[3], ARGV[7])\n"           \
    "  expiry()\n"                                                                  \
    "  return {1, f}\n"                                                             \
    "end\n"                                                                         \
    "if ARGV[5] == '1' then\n"                                                      \
    "  local w = tonumber(ARGV[6])\n"                                               \
    "  redis.call('ZADD', KEYS[4], 'NX', tonumber(tm[1]) * 1000000 + tonumber(tm[2]), ARGV[1])\n" \
    "  redis.call('HSET', KEYS[5], ARGV[1], (now + w) .. ' ' .. ARGV[2] .. ' ' .. ARGV[4] ..\n" \
    "    ' ' .. ARGV[8] .. ' ' .. ARGV[9] .. ' ' .. ARGV[3])\n"                     \
    "  for i = 4, 5 do\n"                                                           \
    "    if redis.call('PTTL', KEYS[i]) < w then redis.call('PEXPIRE', KEYS[i], w) end\n" \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "expiry()\n"                                                                    \
    "local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]\n"          \
    "return {0, first and (tonumber(first) - now) or -1, redis.call('ZCARD', KEYS[4])}\n"

/* SEM_RELEASE: ARGV token. Returns 1 (released; the waiters that now fit
 * are admitted) or 0 (not a holder: nothing of the caller changed). */
#define DL_LUA_SEM_RELEASE                                                          \
    DL_LUA_SEM_PRELUDE                                                              \
    "if foreign() then return 0 end\n"                                              \
    "prune()\n"                                                                     \
    "local ok = redis.call('ZREM', KEYS[1], ARGV[1])\n"                             \
    "if ok == 1 then\n"                                                             \
    "  redis.call('HDEL', KEYS[2], ARGV[1])\n"                                      \
    "  if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end\n"  \
    "end\n"                                                                         \
    "promote()\n"                                                                   \
    "expiry()\n"                                                                    \
    "return ok\n"

/* SEM_EXTEND: ARGV token, ttl_ms. Sets the caller's lease to ttl_ms.
 * Returns 1 (extended) or 0 (not a holder). */
#define DL_LUA_SEM_EXTEND                                                           \
    DL_LUA_SEM_PRELUDE                                                              \
    "if foreign() then return 0 end\n"                                              \
    "settle()\n"                                                                    \
    "local ok = lease(ARGV[1]) and 1 or 0\n"                                        \
    "if ok == 1 then\n"                                                             \
    "  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])\n"       \
    "end\n"                                                                         \
    "expiry()\n"                                                                    \
    "return ok\n"

/* SEM_CANCEL (a waiter gives up): ARGV token, ttl_ms. Leaves the queue;
 * returns {1, fence} if the caller was admitted meanwhile (it keeps the
 * permit, its lease restarted at ttl_ms), else {0}. */
#define DL_LUA_SEM_CANCEL                                                           \
    DL_LUA_SEM_PRELUDE                                                              \
    "qleave(ARGV[1])\n"                                                             \
    "if foreign() then return {0} end\n"                                            \
    "settle()\n"                                                                    \
    "local f = lease(ARGV[1])\n"                                                    \
    "if f then\n"                                                                   \
    "  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])\n"       \
    "end\n"                                                                         \
    "expiry()\n"                                                                    \
    "if f then return {1, f} end\n"                                                 \
    "return {0}\n"

/* SEM_INSPECT: no ARGV. Returns {kind, permits, last_fence, waiters,
 * holders, then per holder (at most 1000, soonest lease end first):
 * token, lease_left_ms, fence, want, acquired_ms, meta}. kind is "sem",
 * "rws", "rwx", "" when free, or the key's type when another kind holds
 * the name ("hash": a mutex). */
#define DL_LUA_SEM_INSPECT                                                          \
    DL_LUA_SEM_PRELUDE                                                              \
    "local lf = tonumber(redis.call('GET', KEYS[3])) or 0\n"                        \
    "if foreign() then\n"                                                           \
    "  return {redis.call('TYPE', KEYS[1])['ok'], 0, lf, 0, 0}\n"                   \
    "end\n"                                                                         \
    "settle()\n"                                                                    \
    "expiry()\n"                                                                    \
    "local out = {redis.call('HGET', KEYS[2], '_k') or '',\n"                       \
    "  tonumber(redis.call('HGET', KEYS[2], '_n')) or 0,\n"                         \
    "  tonumber(redis.call('GET', KEYS[3])) or 0,\n"                                \
    "  redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[1])}\n"               \
    "local all = redis.call('ZRANGE', KEYS[1], 0, 999, 'WITHSCORES')\n"             \
    "for i = 1, #all, 2 do\n"                                                       \
    "  local v = redis.call('HGET', KEYS[2], all[i]) or ''\n"                       \
    "  local f, w, at, meta = string.match(v, '^(%d+) (%S+) (%d+) (.*)$')\n"        \
    "  local n = #out\n"                                                            \
    "  out[n + 1] = all[i]\n"                                                       \
    "  out[n + 2] = tonumber(all[i + 1]) - now\n"                                   \
    "  out[n + 3] = tonumber(f) or 0\n"                                             \
    "  out[n + 4] = w or ''\n"                                                      \
    "  out[n + 5] = tonumber(at) or 0\n"                                            \
    "  out[n + 6] = meta or ''\n"                                                   \
    "end\n"                                                                         \
    "return out\n"

/* ---- MULTI family ---- */

/* Name i's keys are KEYS[4i-3..4i]: lock, fence, queue, queue info.
 * handover() is the mutex RELEASE's hand-over (scripts.lua.h) for one
 * name: the lock goes to the oldest live waiter, which is woken. */
#define DL_LUA_MULTI_PRELUDE                                                        \
    "local tm, now\n"                                                               \
    "local nk = #KEYS / 4\n"                                                        \
    "local function clock()\n"                                                      \
    "  if not tm then\n"                                                            \
    "    tm = redis.call('TIME')\n"                                                 \
    "    now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"      \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "local function mleave(q, qi, tok)\n"                                           \
    "  redis.call('ZREM', KEYS[q], tok)\n"                                          \
    "  redis.call('HDEL', KEYS[qi], tok)\n"                                         \
    "end\n"                                                                         \
    "local function mhead(q, qi)\n"                                                 \
    "  local h = redis.call('ZRANGE', KEYS[q], 0, 0)[1]\n"                          \
    "  while h do\n"                                                                \
    "    clock()\n"                                                                 \
    "    local v = redis.call('HGET', KEYS[qi], h)\n"                               \
    "    local exp = v and tonumber(string.match(v, '^(%d+)')) or 0\n"              \
    "    if exp > now then return h, v, exp end\n"                                  \
    "    mleave(q, qi, h)\n"                                                        \
    "    h = redis.call('ZRANGE', KEYS[q], 0, 0)[1]\n"                              \
    "  end\n"                                                                       \
    "  return false\n"                                                              \
    "end\n"                                                                         \
    "local function handover(l, fk, q, qi)\n"                                       \
    "  redis.call('DEL', KEYS[l])\n"                                                \
    "  local h, v = mhead(q, qi)\n"                                                 \
    "  if not h then return end\n"                                                  \
    "  local ttl, fencing, chan, meta = string.match(v, '^%d+ (%d+) (%d) (%S+) (.*)$')\n" \
    "  mleave(q, qi, h)\n"                                                          \
    "  if not ttl then return end\n"                                                \
    "  local f = 0\n"                                                               \
    "  if fencing == '1' then f = redis.call('INCR', KEYS[fk]) end\n"               \
    "  redis.call('HSET', KEYS[l], 't', h, 'f', f, 'o', meta, 'a', now)\n"          \
    "  redis.call('PEXPIRE', KEYS[l], ttl)\n"                                       \
    "  redis.pcall('PUBLISH', chan, h .. ' ' .. f)\n"                               \
    "end\n"                                                                         \
    "local function mine(l)\n"                                                      \
    "  return redis.call('HGET', KEYS[l], 't') == ARGV[1]\n"                        \
    "end\n"

/* MULTI_ACQUIRE: ARGV as the mutex ACQUIRE (token, ttl_ms, meta, fencing
 * 0|1, enqueue, wait_ms, acquired_ms, wake channel). If every name is free
 * (with no other live queue head) or already the caller's: takes them all
 * and returns {1, fence_1, ..., fence_n}. Otherwise takes none, and
 * returns {0, hint_ms, waiters}; with enqueue the caller queues (FIFO, one
 * arrival time for all names) for every name it does not hold, and keeps
 * the names handed to it meanwhile (refreshing their lease) unless it had
 * lost its place in a queue: then it gives them back (hands them on), so
 * that its new, later place cannot close a cycle of waiters. While it
 * keeps names, hint_ms is at most a third of its ttl, so that it comes
 * back to refresh them before their leases end. */
#define DL_LUA_MULTI_ACQUIRE                                                        \
    DL_LUA_MULTI_PRELUDE                                                            \
    "local own, ready, hint, waiters = {}, true, -1, 0\n"                           \
    "for i = 1, nk do\n"                                                            \
    "  local l, q, qi = 4 * i - 3, 4 * i - 1, 4 * i\n"                              \
    "  local t = redis.call('HGET', KEYS[l], 't')\n"                                \
    "  local w = nil\n"                                                             \
    "  if t == ARGV[1] then own[i] = true\n"                                        \
    "  elseif t then w = redis.call('PTTL', KEYS[l])\n"                             \
    "  else\n"                                                                      \
    "    local h, v, exp = mhead(q, qi)\n"                                          \
    "    if h and h ~= ARGV[1] then w = exp - now end\n"                            \
    "  end\n"                                                                       \
    "  if w then\n"                                                                 \
    "    ready = false\n"                                                           \
    "    if w >= 0 and (hint < 0 or w < hint) then hint = w end\n"                  \
    "    waiters = math.max(waiters, redis.call('ZCARD', KEYS[q]))\n"               \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "if ready then\n"                                                               \
    "  local out = {1}\n"                                                           \
    "  for i = 1, nk do\n"                                                          \
    "    local l, fk, q, qi = 4 * i - 3, 4 * i - 2, 4 * i - 1, 4 * i\n"             \
    "    mleave(q, qi, ARGV[1])\n"                                                  \
    "    local f = 0\n"                                                             \
    "    if own[i] then f = tonumber(redis.call('HGET', KEYS[l], 'f')) or 0\n"      \
    "    else\n"                                                                    \
    "      if ARGV[4] == '1' then f = redis.call('INCR', KEYS[fk]) end\n"           \
    "      redis.call('HSET', KEYS[l], 't', ARGV[1], 'f', f, 'o', ARGV[3], 'a', ARGV[7])\n" \
    "    end\n"                                                                     \
    "    redis.call('PEXPIRE', KEYS[l], ARGV[2])\n"                                 \
    "    out[i + 1] = f\n"                                                          \
    "  end\n"                                                                       \
    "  return out\n"                                                                \
    "end\n"                                                                         \
    "local fresh = false\n"                                                         \
    "if ARGV[5] == '1' then\n"                                                      \
    "  clock()\n"                                                                   \
    "  local w = tonumber(ARGV[6])\n"                                               \
    "  local score = tonumber(tm[1]) * 1000000 + tonumber(tm[2])\n"                 \
    "  for i = 1, nk do\n"                                                          \
    "    local q, qi = 4 * i - 1, 4 * i\n"                                          \
    "    if not own[i] then\n"                                                      \
    "      if redis.call('ZADD', KEYS[q], 'NX', score, ARGV[1]) == 1 then fresh = true end\n" \
    "      redis.call('HSET', KEYS[qi], ARGV[1], (now + w) .. ' ' .. ARGV[2] .. ' ' ..\n" \
    "        ARGV[4] .. ' ' .. ARGV[8] .. ' ' .. ARGV[3])\n"                        \
    "      for j = q, qi do\n"                                                      \
    "        if redis.call('PTTL', KEYS[j]) < w then redis.call('PEXPIRE', KEYS[j], w) end\n" \
    "      end\n"                                                                   \
    "    end\n"                                                                     \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "for i = 1, nk do\n"                                                            \
    "  local l, fk, q, qi = 4 * i - 3, 4 * i - 2, 4 * i - 1, 4 * i\n"               \
    "  if own[i] and (fresh or ARGV[5] ~= '1') then handover(l, fk, q, qi)\n"       \
    "  elseif own[i] then\n"                                                         \
    "    redis.call('PEXPIRE', KEYS[l], ARGV[2])\n"                                  \
    "    local keep = math.floor(tonumber(ARGV[2]) / 3)\n"                           \
    "    if hint < 0 or keep < hint then hint = keep end\n"                          \
    "  end\n"                                                                        \
    "end\n"                                                                         \
    "return {0, hint, waiters}\n"

/* MULTI_RELEASE: ARGV token. Releases (and hands on) every name that still
 * carries the token; returns how many did. */
#define DL_LUA_MULTI_RELEASE                                                        \
    DL_LUA_MULTI_PRELUDE                                                            \
    "local n = 0\n"                                                                 \
    "for i = 1, nk do\n"                                                            \
    "  local l, fk, q, qi = 4 * i - 3, 4 * i - 2, 4 * i - 1, 4 * i\n"               \
    "  if mine(l) then\n"                                                           \
    "    handover(l, fk, q, qi)\n"                                                  \
    "    n = n + 1\n"                                                               \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "return n\n"

/* MULTI_EXTEND: ARGV token, ttl_ms. Sets every name's lease to ttl_ms if
 * every name still carries the token: returns 1; else changes nothing and
 * returns 0. */
#define DL_LUA_MULTI_EXTEND                                                         \
    DL_LUA_MULTI_PRELUDE                                                            \
    "for i = 1, nk do\n"                                                            \
    "  if not mine(4 * i - 3) then return 0 end\n"                                  \
    "end\n"                                                                         \
    "for i = 1, nk do\n"                                                            \
    "  local l = 4 * i - 3\n"                                                       \
    "  redis.call('PEXPIRE', KEYS[l], ARGV[2])\n"                                   \
    "end\n"                                                                         \
    "return 1\n"

/* MULTI_CANCEL (a waiter gives up): ARGV token, ttl_ms. Leaves every
 * queue. If every name was handed to the caller meanwhile, it keeps them
 * (leases restarted at ttl_ms): returns {1, fence_1, ..., fence_n}; else
 * it hands on the names it got, and every name it leaves free to that
 * queue's new head (the caller may have been first in line for a free
 * name while it waited for another: nobody else could take it, and the
 * next in line would not hear of it), and returns {0}. */
#define DL_LUA_MULTI_CANCEL                                                         \
    DL_LUA_MULTI_PRELUDE                                                            \
    "local all = true\n"                                                            \
    "for i = 1, nk do\n"                                                            \
    "  mleave(4 * i - 1, 4 * i, ARGV[1])\n"                                         \
    "  all = all and mine(4 * i - 3)\n"                                             \
    "end\n"                                                                         \
    "local out = {1}\n"                                                             \
    "for i = 1, nk do\n"                                                            \
    "  local l, fk, q, qi = 4 * i - 3, 4 * i - 2, 4 * i - 1, 4 * i\n"               \
    "  if all then\n"                                                               \
    "    redis.call('PEXPIRE', KEYS[l], ARGV[2])\n"                                 \
    "    out[i + 1] = tonumber(redis.call('HGET', KEYS[l], 'f')) or 0\n"            \
    "  elseif mine(l) or redis.call('EXISTS', KEYS[l]) == 0 then\n"                 \
    "    handover(l, fk, q, qi)\n"                                                   \
    "  end\n"                                                                        \
    "end\n"                                                                         \
    "if all then return out end\n"                                                  \
    "return {0}\n"

#endif
