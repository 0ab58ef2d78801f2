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
 *                          Its type tells the kinds apart: a mutex keeps a
 *                          hash there, so a mutex script on a held
 *                          semaphore fails with WRONGTYPE, and these
 *                          scripts refuse a name held as a mutex (their
 *                          first sorted-set command on it fails: pcall).
 *   KEYS[2] P{name}:h      hash: token -> "fence want acquired_ms meta";
 *                          _k -> what the holders are: "sem", "rws" (rw
 *                          readers) or "rwx" (an rw writer); _n -> the
 *                          permits of the last semaphore grant
 *   KEYS[3] P{name}:fence  the fencing counter, shared with the mutex
 *   KEYS[4] P{name}:pq     zset of waiting tokens, scored by arrival (us;
 *                          Redlock: the client's wall clock, one score on
 *                          every server)
 *   KEYS[5] P{name}:pqi    hash token -> "expiry_ms ttl_ms fencing chan want meta"
 * want: "s<N>" a semaphore permit of N, "r0" rw shared, "r1" rw exclusive.
 *
 * The keys expire with the last lease: every script that changes a score
 * sets PEXPIREAT of KEYS[1] and KEYS[2] to the highest score (expiry), so
 * KEYS[1] exists only while its latest lease lasts. Before a script relies
 * on the holders it removes those whose lease has ended (score <= now:
 * prune), so a crashed holder's permit returns when its lease ends. A free
 * name has nothing to prune, and neither has a name with one holder (its
 * lease is the key's life): that is how the uncontended ACQUIRE and
 * RELEASE skip it, and they look no further into an empty queue than
 * whether it exists. ACQUIRE and CANCEL serve the queue in FIFO order
 * (settle = prune, then promote): while its live head fits, the head is
 * granted (with its own ttl, fence and metadata) and woken on its channel
 * with "<token> <fence>". RELEASE prunes, removes the caller, then
 * promotes. Only these three issue fences, and they carry the failover
 * floor for them; EXTEND and INSPECT only prune (and EXTEND sets the
 * caller's lease). So a release admits as many waiters as now fit, oldest
 * first, and a head that does not fit (a writer behind readers, a
 * semaphore that is full) stops everyone behind it: no barging, and the
 * readers queued between two writers are admitted together. On a Redlock
 * set (rw locks only, fencing modes 2 and 3: docs/REDLOCK.md) a head is
 * only woken, never admitted by one server: it takes the room kept for it
 * with its next ACQUIRE on every master, and that ACQUIRE promotes (wakes)
 * the next head, so readers queued together follow one another an
 * attempt apart.
 *
 * MULTI family: several mutexes taken all or nothing by one script. KEYS
 * are the four mutex keys of each name in turn (P{n}, P{n}:fence, P{n}:q,
 * P{n}:qi: scripts.lua.h), so a multi-lock and a plain mutex on the same
 * name exclude each other and share the queue and the hand-over. On
 * Cluster all names of one script must share a hash slot.
 *
 * Both families check their arguments and keep fences exact as the mutex
 * scripts do (the checks inline on the acquires' and releases' paths,
 * DL_LUA_ARGS elsewhere, DL_LUA_FENCES; scripts.lua.h): bounds in the
 * scripts too, fences as decimal strings, FENCEMAX at 2^63-1, and the
 * failover floor in every fence issued on Sentinel and Cluster. As in the
 * mutex scripts, the code that only a held name or a queue needs (and its
 * Lua closures, which cost the server on every call) comes after the
 * uncontended path's return.
 */
#ifndef DLOCK_KINDS_LUA_H
#define DLOCK_KINDS_LUA_H

#include "scripts.lua.h"

/* Argument checks of a SEM or MULTI ACQUIRE (docs/SECURITY.md, "What the
 * scripts check"): ARGV[1..8] checked as the mutex ACQUIRE checks its own,
 * refusing the first bad one; fencing is refused when FM_BAD (a Lua
 * condition on ARGV[4]) holds: MULTI takes 0 or 1 only (on Redlock its
 * names are mutexes), SEM also the Redlock modes 2 and 3. The inline
 * expressions of scripts.lua.h (no closure made, no number parsed: this
 * runs on every call). Straight-line code: every check runs before
 * anything is changed. */
#define DL_LUA_KIND_CHECKS(FM_BAD)                                                  \
    "if not " DL_LUA_TOKEN_OK("ARGV[1]") " then return " DL_LUA_BAD("token") " end\n" \
    "if not " DL_LUA_NUM_OK("ARGV[2]", DL_LUA_STR(DL_LUA_TTL_MAX)) " then\n"        \
    "  return " DL_LUA_BAD("ttl_ms") "\n"                                            \
    "end\n"                                                                         \
    "if type(ARGV[3]) ~= 'string' or #ARGV[3] > " DL_LUA_STR(DL_LUA_META_MAX) " then\n" \
    "  return " DL_LUA_BAD("meta") "\n"                                              \
    "end\n"                                                                         \
    "if " FM_BAD " then return " DL_LUA_BAD("fencing") " end\n"                      \
    "if ARGV[5] ~= '0' and ARGV[5] ~= '1' then return " DL_LUA_BAD("enqueue") " end\n" \
    "if not " DL_LUA_NUM_OK("ARGV[6]", DL_LUA_STR(DL_LUA_WAIT_MAX)) " then\n"       \
    "  return " DL_LUA_BAD("wait_ms") "\n"                                           \
    "end\n"                                                                         \
    "if not (ARGV[7] == '0' or " DL_LUA_NUM_OK("ARGV[7]", "1000000000000000") ") then\n" \
    "  return " DL_LUA_BAD("acquired_ms") "\n"                                       \
    "end\n"                                                                         \
    "if type(ARGV[8]) ~= 'string' or #ARGV[8] > " DL_LUA_STR(DL_LUA_CHAN_MAX) " or\n" \
    "    not string.find(ARGV[8], '^%S+$') then\n"                                  \
    "  return " DL_LUA_BAD("channel") "\n"                                           \
    "end\n"

/* A failover floor that changes nothing (one server, Redlock): absent, ""
 * or "0". The scripts' fast paths issue fences inline only then. */
#define DL_LUA_NO_FLOOR(v) "(" v " == nil or " v " == '' or " v " == '0')"

/* ---- SEM family ---- */

/* The server's time: now in ms (TIME, once per script). */
#define DL_LUA_SEM_NOW                                                              \
    "local tm = redis.call('TIME')\n"                                               \
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"

/* grant(tok, ttl, fencing, w, meta, at, fl) makes tok a holder for ttl ms
 * and returns its fence (a semaphore permit or a writer: the next fence; a
 * reader: the counter raised to the floor fl; "0" with fencing off) and
 * its score, or nil and the error reply (FENCEMAX) having changed nothing.
 * The Redlock modes fence alike (2, a reader: the counter; 3, a writer:
 * this server's INCR; there is no floor). It leaves the keys' expiry to
 * its caller. Needs DL_LUA_FENCES and now. */
#define DL_LUA_SEM_GRANT                                                            \
    "local function grant(tok, ttl, fencing, w, meta, at, fl)\n"                    \
    "  local f, err, k = '0', nil, 'sem'\n"                                         \
    "  if w == 'r0' then k = 'rws' elseif w == 'r1' then k = 'rwx' end\n"           \
    "  if fencing ~= '0' and k == 'rws' then\n"                                     \
    "    f, err = raised_fence_of(3, fl)\n"                                         \
    "  elseif fencing ~= '0' then\n"                                                \
    "    f, err = next_fence_of(3, fl)\n"                                           \
    "  end\n"                                                                       \
    "  if not f then return nil, err end\n"                                         \
    "  local s = now + tonumber(ttl)\n"                                             \
    "  redis.call('ZADD', KEYS[1], s, tok)\n"                                       \
    "  local v = f .. ' ' .. w .. ' ' .. at .. ' ' .. meta\n"                       \
    "  if k == 'sem' then\n"                                                        \
    "    redis.call('HSET', KEYS[2], tok, v, '_k', k, '_n', string.sub(w, 2))\n"    \
    "  else\n"                                                                      \
    "    redis.call('HSET', KEYS[2], tok, v, '_k', k)\n"                            \
    "  end\n"                                                                       \
    "  return f, s\n"                                                               \
    "end\n"

/* prune() removes the ended leases (after DL_LUA_SEM_NOW), and returns
 * false, changing nothing, when KEYS[1] is not a sorted set (the name is
 * held as a mutex, or by something else). */
#define DL_LUA_SEM_PRUNE                                                            \
    "local function prune()\n"                                                      \
    "  local gone = redis.pcall('ZRANGEBYSCORE', KEYS[1], '-inf', now)\n"           \
    "  if gone.err then return false end\n"                                         \
    "  if #gone == 0 then return true end\n"                                        \
    "  for i = 1, #gone do redis.call('HDEL', KEYS[2], gone[i]) end\n"              \
    "  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"                      \
    "  if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end\n"  \
    "  return true\n"                                                               \
    "end\n"

/* The SEM scripts' code for a held name or a queue (after DL_LUA_FENCES,
 * DL_LUA_SEM_NOW and DL_LUA_SEM_GRANT). promote(fl) admits
 * the queue's live heads while they fit, and returns the head that stopped
 * it (false: none) and whether it admitted anyone. A head that cannot be
 * given a fence (FENCEMAX) is not admitted and stops the queue, as one
 * that does not fit: it meets the error at its own next attempt. A Redlock
 * head (queued with fencing 2 or 3) that fits is not admitted either: one
 * server cannot grant what needs a majority. It is woken ("<token> -1",
 * unless it is the caller) and stops the queue, so the room stays its own
 * (no barging) until it takes it with its next ACQUIRE on every server or
 * its entry expires. expiry() sets the keys' expiry to the highest
 * score. */
#define DL_LUA_SEM_QUEUE                                                            \
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
    "local function promote(fl)\n"                                                  \
    "  local any = false\n"                                                         \
    "  while true do\n"                                                             \
    "    local h, v = qhead()\n"                                                    \
    "    if not h then return false, any end\n"                                     \
    "    local ttl, fencing, chan, w, meta =\n"                                     \
    "      string.match(v, '^%d+ (%d+) (%d) (%S+) (%S+) (.*)$')\n"                  \
    "    if ttl and not fits(w) then return h, any end\n"                           \
    "    if fencing == '2' or fencing == '3' then\n"                                \
    "      if h ~= ARGV[1] then redis.pcall('PUBLISH', chan, h .. ' -1') end\n"     \
    "      return h, any\n"                                                         \
    "    end\n"                                                                     \
    "    if ttl then\n"                                                             \
    "      local f = grant(h, ttl, fencing, w, meta, now, fl)\n"                    \
    "      if not f then return h, any end\n"                                       \
    "      any = true\n"                                                            \
    "      qleave(h)\n"                                                             \
    "      redis.pcall('PUBLISH', chan, h .. ' ' .. f)\n"                           \
    "    else\n"                                                                    \
    "      qleave(h)\n"                                                             \
    "    end\n"                                                                     \
    "  end\n"                                                                       \
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
    "  return v and string.match(v, '^(%d+)') or '0'\n"                             \
    "end\n"

/* SEM_ACQUIRE: ARGV token, ttl_ms, meta, fencing, enqueue (0|1), wait_ms,
 * acquired_ms, wake channel, want, and optionally the fence's failover
 * floor (Sentinel and Cluster; "" for none) and the waiter's place in the
 * queue (Redlock: the client's wall clock in us when the wait began, the
 * same on every server, so the servers' queues agree on the order; absent
 * or "-": the server's TIME at the first enqueue).
 * fencing: 0 off; 1 on (one server, Sentinel, Cluster); the Redlock modes
 * of an rw lock (docs/REDLOCK.md): 2 a reader (report the counter: the
 * client takes the highest its majority reports), 3 a writer (INCR it:
 * the client keeps the value when every granting server reports the same
 * one, else it writes max + 1 with SEM_FENCE). A waiter queued with 2 or 3
 * is only woken, never admitted by one server (promote).
 * Returns the fence, a bulk string (held now; also when already held:
 * idempotent; the mutex ACQUIRE's reply, as a Lua table costs the server
 * an array reply), or
 * {0, hint_ms, waiters}: hint_ms is when the first lease ends (-1: none).
 * An error reply WRONGTYPE when the name is held as another kind, FENCEMAX
 * when no fence can be issued. A caller admitted as the queue's head
 * promotes the heads behind it (readers behind a reader).
 * Calls on a free name with no queue: TIME, EXISTS, INCR (a fenced permit
 * or writer; GET for a reader), ZADD, HSET, PEXPIREAT twice. */
#define DL_LUA_SEM_ACQUIRE                                                          \
    DL_LUA_KIND_CHECKS("ARGV[4] ~= '1' and ARGV[4] ~= '0' and ARGV[4] ~= '2' and ARGV[4] ~= '3'") \
    "local w = ARGV[9]\n"                                                           \
    "if w ~= 'r0' and w ~= 'r1' then\n"                                             \
    "  local wn = type(w) == 'string' and string.sub(w, 1, 1) == 's' and string.sub(w, 2)\n" \
    "  if not " DL_LUA_NUM_OK("wn", DL_LUA_STR(DL_LUA_PERMITS_MAX)) " then\n"      \
    "    return " DL_LUA_BAD("want") "\n"                                            \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "if not " DL_LUA_FLOOR_OK("ARGV[10]") " then return " DL_LUA_BAD("floor") " end\n" \
    "if ARGV[11] and ARGV[11] ~= '-' and not " DL_LUA_NUM_OK("ARGV[11]", "9007199254740991") " then\n" \
    "  return " DL_LUA_BAD("score") "\n"                                             \
    "end\n"                                                                         \
    DL_LUA_SEM_NOW                                                                  \
    "local fm = ARGV[4]\n"                                                          \
    "if (fm == '0' or fm == '1') and " DL_LUA_NO_FLOOR("ARGV[10]") " and\n"         \
    "    redis.call('EXISTS', KEYS[1], KEYS[4]) == 0 then\n"                        \
    "  local f, err = '0'\n"                                                        \
    "  if fm == '1' and w == 'r0' then f = redis.call('GET', KEYS[3]) or '0'\n"     \
    "  elseif fm == '1' then\n"                                                     \
    "    f = nil\n"                                                                 \
    DL_LUA_INCR_FENCE("3")                                                          \
    "    if not f then return err end\n"                                            \
    "  end\n"                                                                       \
    "  local s = now + ARGV[2]\n"                                                   \
    "  redis.call('ZADD', KEYS[1], s, ARGV[1])\n"                                   \
    "  local v = f .. ' ' .. w .. ' ' .. ARGV[7] .. ' ' .. ARGV[3]\n"               \
    "  if w == 'r0' then redis.call('HSET', KEYS[2], ARGV[1], v, '_k', 'rws')\n"    \
    "  elseif w == 'r1' then redis.call('HSET', KEYS[2], ARGV[1], v, '_k', 'rwx')\n" \
    "  else redis.call('HSET', KEYS[2], ARGV[1], v, '_k', 'sem', '_n', string.sub(w, 2)) end\n" \
    "  redis.call('PEXPIREAT', KEYS[1], s)\n"                                       \
    "  redis.call('PEXPIREAT', KEYS[2], s)\n"                                       \
    "  return f\n"                                                             \
    "end\n"                                                                         \
    DL_LUA_FENCES                                                                   \
    DL_LUA_SEM_GRANT                                                                \
    "if redis.call('EXISTS', KEYS[1], KEYS[4]) == 0 then\n"                         \
    "  local f, s = grant(ARGV[1], ARGV[2], ARGV[4], w, ARGV[3], ARGV[7], ARGV[10])\n" \
    "  if not f then return s end\n"                                                \
    "  redis.call('PEXPIREAT', KEYS[1], s)\n"                                       \
    "  redis.call('PEXPIREAT', KEYS[2], s)\n"                                       \
    "  return f\n"                                                             \
    "end\n"                                                                         \
    DL_LUA_SEM_PRUNE                                                                \
    DL_LUA_SEM_QUEUE                                                                \
    "if not prune() then return redis.error_reply('WRONGTYPE the name is held as a mutex') end\n" \
    "local h, moved = promote(ARGV[10])\n"                                          \
    "local f = lease(ARGV[1])\n"                                                    \
    "if f then\n"                                                                   \
    "  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])\n"       \
    "  qleave(ARGV[1])\n"                                                           \
    "  expiry()\n"                                                                  \
    "  return f\n"                                                             \
    "end\n"                                                                         \
    "local k = redis.call('HGET', KEYS[2], '_k')\n"                                 \
    "if k and (k == 'sem') ~= (string.sub(w, 1, 1) == 's') then\n"                  \
    "  if moved then expiry() end\n"                                                \
    "  return redis.error_reply('WRONGTYPE the name is held as a ' ..\n"            \
    "    (k == 'sem' and 'semaphore' or 'read-write lock'))\n"                      \
    "end\n"                                                                         \
    "if (not h or h == ARGV[1]) and fits(w) then\n"                                 \
    "  local err\n"                                                                 \
    "  f, err = grant(ARGV[1], ARGV[2], ARGV[4], w, ARGV[3], ARGV[7], ARGV[10])\n"  \
    "  if not f then\n"                                                             \
    "    if moved then expiry() end\n"                                              \
    "    return err\n"                                                              \
    "  end\n"                                                                       \
    "  qleave(ARGV[1])\n"                                                           \
    "  if h then promote(ARGV[10]) end\n"                                           \
    "  expiry()\n"                                                                  \
    "  return f\n"                                                             \
    "end\n"                                                                         \
    "if ARGV[5] == '1' then\n"                                                      \
    "  local wait = tonumber(ARGV[6])\n"                                            \
    "  local sc = tonumber(ARGV[11]) or (tonumber(tm[1]) * 1000000 + tonumber(tm[2]))\n" \
    "  redis.call('ZADD', KEYS[4], 'NX', sc, ARGV[1])\n"                             \
    "  redis.call('HSET', KEYS[5], ARGV[1], (now + wait) .. ' ' .. ARGV[2] .. ' ' .. ARGV[4] ..\n" \
    "    ' ' .. ARGV[8] .. ' ' .. w .. ' ' .. ARGV[3])\n"                           \
    "  for i = 4, 5 do\n"                                                           \
    "    if redis.call('PTTL', KEYS[i]) < wait then redis.call('PEXPIRE', KEYS[i], wait) end\n" \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "if moved then expiry() end\n"                                                  \
    "local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]\n"          \
    "return {0, first and (tonumber(first) - now) or -1, redis.call('ZCARD', KEYS[4])}\n"

/* SEM_RELEASE: ARGV token, and optionally the failover floor of the
 * fences of the waiters it admits. Returns 1 (released; the waiters that
 * now fit are admitted) or 0 (not a holder: nothing of the caller
 * changed).
 * Calls when the caller is the only holder and no one waits: ZCARD, ZREM,
 * DEL, ZCARD (the key exists only while its one lease lasts, so that lease
 * has not ended and there is nothing to prune). */
#define DL_LUA_SEM_RELEASE                                                          \
    "if not " DL_LUA_FLOOR_OK("ARGV[2]") " then return " DL_LUA_BAD("floor") " end\n" \
    "local n = redis.pcall('ZCARD', KEYS[1])\n"                                     \
    "if type(n) ~= 'number' then return 0 end\n"                                    \
    "local ok = 0\n"                                                                \
    "if n == 1 then\n"                                                              \
    "  ok = redis.call('ZREM', KEYS[1], ARGV[1])\n"                                 \
    "  if ok == 1 then\n"                                                           \
    "    redis.call('DEL', KEYS[2])\n"                                              \
    "    if redis.call('ZCARD', KEYS[4]) == 0 then return 1 end\n"                  \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    DL_LUA_FENCES                                                                   \
    DL_LUA_SEM_NOW                                                                  \
    DL_LUA_SEM_GRANT                                                                \
    DL_LUA_SEM_PRUNE                                                                \
    DL_LUA_SEM_QUEUE                                                                \
    "local moved = false\n"                                                         \
    "if ok == 0 and n > 0 then\n"                                                   \
    "  prune()\n"                                                                   \
    "  ok = redis.call('ZREM', KEYS[1], ARGV[1])\n"                                 \
    "  if ok == 1 then\n"                                                           \
    "    moved = true\n"                                                            \
    "    redis.call('HDEL', KEYS[2], ARGV[1])\n"                                    \
    "    if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end\n" \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "local _, any = promote(ARGV[2])\n"                                             \
    "if moved or any then expiry() end\n"                                           \
    "return ok\n"

/* SEM_EXTEND: ARGV token, ttl_ms. Prunes; sets the caller's lease to
 * ttl_ms. Returns 1 (extended) or 0 (not a holder, or the name is held as
 * another kind). Admits no one (no floor). */
#define DL_LUA_SEM_EXTEND                                                           \
    DL_LUA_ARGS                                                                     \
    "if not num(ARGV[2], TTL_MAX) then return bad('ttl_ms') end\n"                  \
    DL_LUA_SEM_NOW                                                                  \
    DL_LUA_SEM_PRUNE                                                                \
    "if not prune() or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end\n" \
    "redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])\n"         \
    "local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]\n"          \
    "redis.call('PEXPIREAT', KEYS[1], top)\n"                                       \
    "redis.call('PEXPIREAT', KEYS[2], top)\n"                                       \
    "return 1\n"

/* SEM_CANCEL (a waiter gives up): ARGV token, ttl_ms, and optionally the
 * failover floor. Leaves the queue; returns {1, fence} if the caller was
 * admitted meanwhile (it keeps the permit, its lease restarted at ttl_ms),
 * else {0}. */
#define DL_LUA_SEM_CANCEL                                                           \
    DL_LUA_ARGS                                                                     \
    "if not num(ARGV[2], TTL_MAX) then return bad('ttl_ms') end\n"                  \
    DL_LUA_FENCES                                                                   \
    "if not floor_ok(ARGV[3]) then return bad('floor') end\n"                       \
    DL_LUA_SEM_NOW                                                                  \
    DL_LUA_SEM_GRANT                                                                \
    DL_LUA_SEM_PRUNE                                                                \
    DL_LUA_SEM_QUEUE                                                                \
    "qleave(ARGV[1])\n"                                                             \
    "if not prune() then return {0} end\n"                                          \
    "local _, moved = promote(ARGV[3])\n"                                           \
    "local f = lease(ARGV[1])\n"                                                    \
    "if f then\n"                                                                   \
    "  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])\n"       \
    "  moved = true\n"                                                              \
    "end\n"                                                                         \
    "if moved then expiry() end\n"                                                  \
    "if f then return {1, f} end\n"                                                 \
    "return {0}\n"

/* SEM_FENCE (Redlock rw locks, when the granting servers' counters
 * disagree): ARGV token, candidate (a decimal 1..2^63-1: a writer's
 * max + 1, a reader's max). If the caller holds the name on this server,
 * raise the counter to at least `candidate`, store it as the holder's
 * fence (the first word of its KEYS[2] value) and return the counter (a
 * decimal string); otherwise return -1. Compared as decimal strings, as
 * the mutex FENCE does: no Lua number is involved. */
#define DL_LUA_SEM_FENCE                                                            \
    DL_LUA_ARGS                                                                     \
    "local c = ARGV[2]\n"                                                           \
    "if not token(ARGV[1]) then return bad('token') end\n"                          \
    "if not (type(c) == 'string' and string.match(c, '^[1-9]%d*$') and\n"           \
    "    (#c < 19 or (#c == 19 and c <= '9223372036854775807'))) then\n"            \
    "  return bad('candidate')\n"                                                   \
    "end\n"                                                                         \
    "local s = redis.pcall('ZSCORE', KEYS[1], ARGV[1])\n"                           \
    "if type(s) ~= 'string' then return -1 end\n"                                   \
    DL_LUA_SEM_NOW                                                                  \
    "local v = redis.call('HGET', KEYS[2], ARGV[1])\n"                              \
    "if tonumber(s) <= now or not v then return -1 end\n"                           \
    "local cur = redis.call('GET', KEYS[3]) or '0'\n"                               \
    "if #c > #cur or (#c == #cur and c > cur) then redis.call('SET', KEYS[3], c); cur = c end\n" \
    "redis.call('HSET', KEYS[2], ARGV[1], cur .. (string.match(v, '^%d+(.*)$') or ''))\n" \
    "return cur\n"

/* SEM_INSPECT: no ARGV. Returns {kind, permits, last_fence, waiters,
 * holders, then per holder (at most 1000, soonest lease end first):
 * token, lease_left_ms, fence, want, acquired_ms, meta}; the fences are
 * decimal strings. kind is "sem", "rws", "rwx", "" when free, or the key's
 * type when another kind holds the name ("hash": a mutex). Prunes ended
 * leases; admits no one. */
#define DL_LUA_SEM_INSPECT                                                          \
    DL_LUA_SEM_NOW                                                                  \
    DL_LUA_SEM_PRUNE                                                                \
    "local lf = redis.call('GET', KEYS[3]) or '0'\n"                                \
    "if not prune() then\n"                                                         \
    "  return {redis.call('TYPE', KEYS[1])['ok'], 0, lf, 0, 0}\n"                   \
    "end\n"                                                                         \
    "local out = {redis.call('HGET', KEYS[2], '_k') or '',\n"                       \
    "  tonumber(redis.call('HGET', KEYS[2], '_n')) or 0, lf,\n"                     \
    "  redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[1])}\n"               \
    "local all = redis.call('ZRANGE', KEYS[1], 0, 999, 'WITHSCORES')\n"             \
    "for i = 1, #all, 2 do\n"                                                       \
    "  local v = redis.call('HGET', KEYS[2], all[i]) or ''\n"                       \
    "  local f, w, at, meta = string.match(v, '^(%d+) (%S+) (%d+) (.*)$')\n"        \
    "  local n = #out\n"                                                            \
    "  out[n + 1] = all[i]\n"                                                       \
    "  out[n + 2] = tonumber(all[i + 1]) - now\n"                                   \
    "  out[n + 3] = f or '0'\n"                                                     \
    "  out[n + 4] = w or ''\n"                                                      \
    "  out[n + 5] = tonumber(at) or 0\n"                                            \
    "  out[n + 6] = meta or ''\n"                                                   \
    "end\n"                                                                         \
    "return out\n"

/* ---- MULTI family ---- */

/* The MULTI scripts' code for a held name or a queue (after DL_LUA_FENCES).
 * Name i's keys are KEYS[4i-3..4i]: lock, fence, queue, queue info.
 * handon(l, fk, q, qi, fl) is the mutex RELEASE's hand-over (scripts.lua.h)
 * for one free name, with the failover floor fl: the lock goes to the
 * oldest live waiter, which is woken; when no fence can be issued
 * (FENCEMAX) the name is handed to no one (the head meets the error at its
 * next attempt). handover() first releases the name. */
#define DL_LUA_MULTI_QUEUE                                                          \
    "local tm, now\n"                                                               \
    "local function clock()\n"                                                      \
    "  if not tm then\n"                                                            \
    "    tm = redis.call('TIME')\n"                                                 \
    "    now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"       \
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
    "local function handon(l, fk, q, qi, fl)\n"                                     \
    "  local h, v = mhead(q, qi)\n"                                                 \
    "  if not h then return end\n"                                                  \
    "  local ttl, fencing, chan, meta = string.match(v, '^%d+ (%d+) (%d) (%S+) (.*)$')\n" \
    "  if fencing == '2' then\n"                                                    \
    "    redis.pcall('PUBLISH', chan, h .. ' -1')\n"                                \
    "    return\n"                                                                  \
    "  end\n"                                                                       \
    "  local f = '0'\n"                                                             \
    "  if ttl and fencing == '1' then f = next_fence_of(fk, fl) end\n"              \
    "  if not f then return end\n"                                                  \
    "  mleave(q, qi, h)\n"                                                          \
    "  if not ttl then return end\n"                                                \
    "  redis.call('HSET', KEYS[l], 't', h, 'f', f, 'o', meta, 'a', now)\n"          \
    "  redis.call('PEXPIRE', KEYS[l], ttl)\n"                                       \
    "  redis.pcall('PUBLISH', chan, h .. ' ' .. f)\n"                               \
    "end\n"                                                                         \
    "local function handover(l, fk, q, qi, fl)\n"                                   \
    "  redis.call('DEL', KEYS[l])\n"                                                \
    "  handon(l, fk, q, qi, fl)\n"                                                  \
    "end\n"                                                                         \
    "local function mine(l)\n"                                                      \
    "  return redis.call('HGET', KEYS[l], 't') == ARGV[1]\n"                        \
    "end\n"

/* MULTI_ACQUIRE: ARGV as the mutex ACQUIRE (token, ttl_ms, meta, fencing
 * 0|1, enqueue, wait_ms, acquired_ms, wake channel), then optionally the
 * failover floor (ARGV[9]). If every name is free (with no other live
 * queue head) or already the caller's: takes them all and returns {1,
 * fence_1, ..., fence_n}; FENCEMAX, taking none, if a name's counter is
 * at 2^63-1. Otherwise takes none, and returns {0, hint_ms, waiters};
 * with enqueue the caller queues (FIFO, one arrival time for all names)
 * for every name it does not hold, and keeps the names handed to it
 * meanwhile (refreshing their lease) unless it had lost its place in a
 * queue: then it gives them back (hands them on), so that its new, later
 * place cannot close a cycle of waiters. While it keeps names, hint_ms is
 * at most a third of its ttl, so that it comes back to refresh them before
 * their leases end.
 * Calls when every name is free with no queue: HGET and ZCARD per name
 * (the mutex ACQUIRE's: no command beyond the mutex's, so its ACL user,
 * docs/SECURITY.md, can take multi-locks), GET of every name's counter but
 * the first (its INCR comes first, so that a FENCEMAX there changes
 * nothing), then per name INCR, HSET, PEXPIRE. */
#define DL_LUA_MULTI_ACQUIRE                                                        \
    DL_LUA_KIND_CHECKS("ARGV[4] ~= '0' and ARGV[4] ~= '1'")                        \
    "local nk = #KEYS / 4\n"                                                        \
    "if nk < 1 or #KEYS % 4 ~= 0 then return " DL_LUA_BAD("keys") " end\n"          \
    "if not " DL_LUA_FLOOR_OK("ARGV[9]") " then return " DL_LUA_BAD("floor") " end\n" \
    "local free = true\n"                                                           \
    "for i = 1, nk do\n"                                                            \
    "  local l, q = 4 * i - 3, 4 * i - 1\n"                                         \
    "  if redis.call('HGET', KEYS[l], 't') or redis.call('ZCARD', KEYS[q]) > 0 then\n" \
    "    free = false\n"                                                            \
    "    break\n"                                                                   \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "if free and " DL_LUA_NO_FLOOR("ARGV[9]") " then\n"                             \
    "  local out = {1}\n"                                                           \
    "  if ARGV[4] == '1' then\n"                                                    \
    "    for i = 2, nk do\n"                                                        \
    "      local fk = 4 * i - 2\n"                                                  \
    "      if redis.call('GET', KEYS[fk]) == '9223372036854775807' then\n"          \
    "        return " DL_LUA_FENCEMAX_REPLY "\n"                                     \
    "      end\n"                                                                   \
    "    end\n"                                                                     \
    "  end\n"                                                                       \
    "  for i = 1, nk do\n"                                                          \
    "    local l, fk = 4 * i - 3, 4 * i - 2\n"                                      \
    "    local f, err = '0'\n"                                                      \
    "    if ARGV[4] == '1' then\n"                                                  \
    "      f = nil\n"                                                               \
    DL_LUA_INCR_FENCE("fk")                                                         \
    "      if not f then return err end\n"                                          \
    "    end\n"                                                                     \
    "    redis.call('HSET', KEYS[l], 't', ARGV[1], 'f', f, 'o', ARGV[3], 'a', ARGV[7])\n" \
    "    redis.call('PEXPIRE', KEYS[l], ARGV[2])\n"                                 \
    "    out[i + 1] = f\n"                                                          \
    "  end\n"                                                                       \
    "  return out\n"                                                                \
    "end\n"                                                                         \
    DL_LUA_FENCES                                                                   \
    "if free then\n"                                                                \
    "  local out = {1}\n"                                                           \
    "  if ARGV[4] == '1' then\n"                                                    \
    "    for i = 2, nk do\n"                                                        \
    "      local fk = 4 * i - 2\n"                                                  \
    "      if redis.call('GET', KEYS[fk]) == '9223372036854775807' then return fencemax() end\n" \
    "    end\n"                                                                     \
    "  end\n"                                                                       \
    "  for i = 1, nk do\n"                                                          \
    "    local l, fk = 4 * i - 3, 4 * i - 2\n"                                      \
    "    local f, err = '0'\n"                                                      \
    "    if ARGV[4] == '1' then f, err = next_fence_of(fk, ARGV[9]) end\n"          \
    "    if not f then return err end\n"                                            \
    "    redis.call('HSET', KEYS[l], 't', ARGV[1], 'f', f, 'o', ARGV[3], 'a', ARGV[7])\n" \
    "    redis.call('PEXPIRE', KEYS[l], ARGV[2])\n"                                 \
    "    out[i + 1] = f\n"                                                          \
    "  end\n"                                                                       \
    "  return out\n"                                                                \
    "end\n"                                                                         \
    DL_LUA_MULTI_QUEUE                                                              \
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
    "  if ARGV[4] == '1' then\n"                                                    \
    "    local _, err = epoch_floor(ARGV[9])\n"                                     \
    "    if err then return err end\n"                                              \
    "    for i = 1, nk do\n"                                                        \
    "      local fk = 4 * i - 2\n"                                                  \
    "      if not own[i] and redis.call('GET', KEYS[fk]) == '9223372036854775807' then\n" \
    "        return fencemax()\n"                                                   \
    "      end\n"                                                                   \
    "    end\n"                                                                     \
    "  end\n"                                                                       \
    "  local out = {1}\n"                                                           \
    "  for i = 1, nk do\n"                                                          \
    "    local l, fk, q, qi = 4 * i - 3, 4 * i - 2, 4 * i - 1, 4 * i\n"             \
    "    local f = '0'\n"                                                           \
    "    if own[i] then f = redis.call('HGET', KEYS[l], 'f') or '0'\n"              \
    "    else\n"                                                                    \
    "      if ARGV[4] == '1' then\n"                                                \
    "        local err\n"                                                           \
    "        f, err = next_fence_of(fk, ARGV[9])\n"                                 \
    "        if not f then return err end\n"                                        \
    "      end\n"                                                                   \
    "      redis.call('HSET', KEYS[l], 't', ARGV[1], 'f', f, 'o', ARGV[3], 'a', ARGV[7])\n" \
    "    end\n"                                                                     \
    "    mleave(q, qi, ARGV[1])\n"                                                  \
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
    "  if own[i] and (fresh or ARGV[5] ~= '1') then handover(l, fk, q, qi, ARGV[9])\n" \
    "  elseif own[i] then\n"                                                        \
    "    redis.call('PEXPIRE', KEYS[l], ARGV[2])\n"                                 \
    "    local keep = math.floor(tonumber(ARGV[2]) / 3)\n"                          \
    "    if hint < 0 or keep < hint then hint = keep end\n"                         \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "return {0, hint, waiters}\n"

/* MULTI_RELEASE: ARGV token, and optionally the failover floor of the
 * hand-overs' fences. Releases every name that still carries the token,
 * then hands each of those with a queue on; returns how many it released.
 * Calls per name with no queue: HGET, DEL, ZCARD (the mutex RELEASE's). */
#define DL_LUA_MULTI_RELEASE                                                        \
    "if not " DL_LUA_FLOOR_OK("ARGV[2]") " then return " DL_LUA_BAD("floor") " end\n" \
    "local nk = #KEYS / 4\n"                                                        \
    "local n, queued = 0, nil\n"                                                    \
    "for i = 1, nk do\n"                                                            \
    "  local l, q = 4 * i - 3, 4 * i - 1\n"                                         \
    "  if redis.call('HGET', KEYS[l], 't') == ARGV[1] then\n"                       \
    "    redis.call('DEL', KEYS[l])\n"                                              \
    "    n = n + 1\n"                                                               \
    "    if redis.call('ZCARD', KEYS[q]) > 0 then\n"                                \
    "      queued = queued or {}\n"                                                 \
    "      queued[#queued + 1] = i\n"                                               \
    "    end\n"                                                                     \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "if not queued then return n end\n"                                             \
    DL_LUA_FENCES                                                                   \
    DL_LUA_MULTI_QUEUE                                                              \
    "for _, i in ipairs(queued) do\n"                                               \
    "  handon(4 * i - 3, 4 * i - 2, 4 * i - 1, 4 * i, ARGV[2])\n"                   \
    "end\n"                                                                         \
    "return n\n"

/* MULTI_EXTEND: ARGV token, ttl_ms. Sets every name's lease to ttl_ms if
 * every name still carries the token: returns 1; else changes nothing and
 * returns 0. */
#define DL_LUA_MULTI_EXTEND                                                         \
    DL_LUA_ARGS                                                                     \
    "if not num(ARGV[2], TTL_MAX) then return bad('ttl_ms') end\n"                  \
    "local nk = #KEYS / 4\n"                                                        \
    "for i = 1, nk do\n"                                                            \
    "  local l = 4 * i - 3\n"                                                       \
    "  if redis.call('HGET', KEYS[l], 't') ~= ARGV[1] then return 0 end\n"          \
    "end\n"                                                                         \
    "for i = 1, nk do\n"                                                            \
    "  local l = 4 * i - 3\n"                                                       \
    "  redis.call('PEXPIRE', KEYS[l], ARGV[2])\n"                                   \
    "end\n"                                                                         \
    "return 1\n"

/* MULTI_CANCEL (a waiter gives up): ARGV token, ttl_ms, and optionally the
 * failover floor. Leaves every queue. If every name was handed to the
 * caller meanwhile, it keeps them (leases restarted at ttl_ms): returns
 * {1, fence_1, ..., fence_n}; else it hands on the names it got, and every
 * name it leaves free to that queue's new head (the caller may have been
 * first in line for a free name while it waited for another: nobody else
 * could take it, and the next in line would not hear of it), and returns
 * {0}. */
#define DL_LUA_MULTI_CANCEL                                                         \
    DL_LUA_ARGS                                                                     \
    "if not num(ARGV[2], TTL_MAX) then return bad('ttl_ms') end\n"                  \
    DL_LUA_FENCES                                                                   \
    "if not floor_ok(ARGV[3]) then return bad('floor') end\n"                       \
    "local nk = #KEYS / 4\n"                                                        \
    DL_LUA_MULTI_QUEUE                                                              \
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
    "    out[i + 1] = redis.call('HGET', KEYS[l], 'f') or '0'\n"                    \
    "  elseif mine(l) or redis.call('EXISTS', KEYS[l]) == 0 then\n"                 \
    "    handover(l, fk, q, qi, ARGV[3])\n"                                         \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "if all then return out end\n"                                                  \
    "return {0}\n"

#endif
