/* scripts.lua.h - every Lua script dlock runs, in one place.
 * Protocol version 2 (docs/PROTOCOL.md, which specifies every script).
 *
 * Sent with EVALSHA (EVAL once after NOSCRIPT). Names, tokens and metadata
 * travel only as KEYS/ARGV, never as Lua source.
 *
 * Keys (all in the hash slot of {name}; for a name starting with '}',
 * whose tag "{}" would be empty, P{NUL name}...: scripts.c):
 *   KEYS[1] P{name}        hash: t = holder token, f = fence, o = owner
 *                          metadata, a = acquisition time (ms since the epoch)
 *   KEYS[2] P{name}:fence  fencing counter (never expires)
 *   KEYS[3] P{name}:q      zset of waiting tokens, scored by arrival (us)
 *   KEYS[4] P{name}:qi     hash token -> "expiry_ms ttl_ms fencing chan meta"
 *   Pwake:<id>             pub/sub channel of one engine (not a key): a
 *                          waiter is woken there with "<token> <fence>"
 * Every key a script touches is one of its KEYS (servers that enforce
 * declared keys, and Cluster routing, need that): tests/regress checks it.
 *
 * Queue rules: a waiter's entry lives until its expiry (the waiter's own
 * sleep + margin, refreshed by every attempt), so a dead waiter blocks
 * nobody for long. On release the lock is handed straight to the oldest
 * live waiter (with its token, ttl and metadata) and its channel gets the
 * new fence: the woken waiter needs no further command (a waiter that was
 * not listening finds the lock its own at its next attempt). The PUBLISH
 * is a pcall: a user not allowed to publish still releases, and the
 * waiter finds the hand-over at its next attempt.
 * A free lock with a live queue can be taken only by the queue's head: no
 * barging.
 */
#ifndef DLOCK_SCRIPTS_LUA_H
#define DLOCK_SCRIPTS_LUA_H

#define DL_LUA_STR_(x) #x
#define DL_LUA_STR(x) DL_LUA_STR_(x)

/* Argument checks (bounds: DL_LUA_*_MAX in proto.h), as Lua expressions
 * over one ARGV entry or local v, for the mutex scripts' fast paths (no
 * closure is made and no number parsed: both cost the server on every
 * call; the value v is evaluated several times, so pass a local or an
 * ARGV element). DL_LUA_NUM_OK(v, hi): v is a decimal integer 1..hi
 * without sign or leading zero, hi a decimal string of at most 16 digits
 * (so at most 2^53, and the number is exact); equal-length decimal
 * strings compare as their numbers. DL_LUA_TOKEN_OK(v): v is 32 lowercase
 * hex digits. DL_LUA_BAD(what): the error reply for a refused argument
 * (nothing has been changed when it is returned). */
#define DL_LUA_NUM_OK(v, hi)                                                       \
    "(" v " and (#" v " < #'" hi "' or (#" v " == #'" hi "' and " v " <= '" hi "')) and " \
    "string.find(" v ", '^[1-9]%d*$') ~= nil)"
#define DL_LUA_TOKEN_OK(v) "(" v " and #" v " == 32 and string.find(" v ", '^[0-9a-f]+$') ~= nil)"
#define DL_LUA_BAD(what) "redis.error_reply('ERR dlock: bad argument: " what "')"

/* The same checks as functions, for the scripts of kinds.lua.h:
 * num(v, hi) is v as a number if it is a decimal integer 1..hi without
 * sign or leading zero (at most 16 digits; hi at most 2^53, so the number
 * is exact), else nil; token(v) says whether v is 32 lowercase hex
 * digits; bad(what) is the error reply for a refused argument. */
#define DL_LUA_ARGS                                                                \
    "local function num(v, hi)\n"                                                  \
    "  if type(v) ~= 'string' or #v > 16 or not string.match(v, '^[1-9]%d*$') then return nil end\n" \
    "  local n = tonumber(v)\n"                                                    \
    "  if n > hi then return nil end\n"                                            \
    "  return n\n"                                                                 \
    "end\n"                                                                        \
    "local function token(v)\n"                                                    \
    "  return type(v) == 'string' and #v == 32 and string.find(v, '^[0-9a-f]+$') ~= nil\n" \
    "end\n"                                                                        \
    "local function bad(what)\n"                                                   \
    "  return redis.error_reply('ERR dlock: bad argument: ' .. what)\n"            \
    "end\n"                                                                        \
    "local TTL_MAX = " DL_LUA_STR(DL_LUA_TTL_MAX) "\n"

/* Fences (every script that issues one). Fences never pass through an
 * inexact Lua number (a double: exact only up to 2^53): a counter is
 * INCRed; below 2^53 the reply is exact and is formatted as a decimal
 * string, above it is read back with GET as one. That string is what is
 * stored, published and returned; decimal strings without leading zeros compare exactly by
 * length, then bytes (dec_lt).
 * The failover floor (docs/FAILOVER.md): a fence is never below epoch *
 * 2^40, where epoch is the failover epoch of the master issuing it. A
 * script takes the floor as an argument fl: a decimal (Sentinel: the
 * client's, from the master's config-epoch), "cluster" (this node's own
 * configEpoch, from CLUSTER INFO, read once per script run), or absent or
 * "" (one server, Redlock: no floor); floor_ok(v), or the expression
 * DL_LUA_FLOOR_OK(v), checks one.
 * epoch_floor(fl) is the floor as a decimal string (nil: none), or nil and
 * an error reply (FENCEMAX: an epoch of 2^23 or more does not fit).
 * next_fence_of(ki, fl) raises the counter KEYS[ki] to max(counter + 1,
 * floor) and returns it; raised_fence_of(ki, fl) raises it only to the floor (a reader's
 * fence: no new fence, the last one, but never below this master's
 * floor). Both return nil and an error reply having changed nothing when
 * no fence can be issued (FENCEMAX once the counter is at 2^63-1: the
 * reply fencemax() makes).
 * DL_LUA_INCR_FENCE(ki) is next_fence_of's step without a floor, as
 * statements (no closure: the mutex's fast path when there is no floor):
 * it sets the caller's local f (nil before) to the next fence, or leaves
 * it nil and sets the caller's local err to the error reply. */
#define DL_LUA_FLOOR_OK(v)                                                         \
    "(" v " == nil or " v " == '' or " v " == 'cluster' or " v " == '0' or\n"      \
    "  (string.match(" v ", '^[1-9]%d*$') and (#" v " < 19 or (#" v " == 19 and " v " <= '9223372036854775807'))))"
#define DL_LUA_FENCEMAX_REPLY                                                      \
    "redis.error_reply('FENCEMAX the fencing counter is at 2^63-1: no higher fence can be issued')"
#define DL_LUA_INCR_FENCE(ki)                                                      \
    "do\n"                                                                         \
    "  local n = redis.pcall('INCR', KEYS[" ki "])\n"                              \
    "  if type(n) ~= 'table' then\n"                                               \
    "    f = n < 9007199254740992 and string.format('%d', n) or redis.call('GET', KEYS[" ki "])\n" \
    "  elseif redis.call('GET', KEYS[" ki "]) ~= '9223372036854775807' then err = n\n" \
    "  else err = " DL_LUA_FENCEMAX_REPLY " end\n"                                 \
    "end\n"
#define DL_LUA_FENCES                                                              \
    "local function dec_lt(a, b) return #a < #b or (#a == #b and a < b) end\n"     \
    "local function floor_ok(v)\n"                                                 \
    "  return " DL_LUA_FLOOR_OK("v") "\n"                                          \
    "end\n"                                                                        \
    "local function fencemax()\n"                                                  \
    "  return " DL_LUA_FENCEMAX_REPLY "\n"                                         \
    "end\n"                                                                        \
    "local floor_memo\n"                                                           \
    "local function epoch_floor(fl)\n"                                             \
    "  if fl ~= 'cluster' then\n"                                                  \
    "    if fl == nil or fl == '' then return nil end\n"                           \
    "    return fl\n"                                                              \
    "  end\n"                                                                      \
    "  if not floor_memo then\n"                                                   \
    "    local e = tonumber(string.match(redis.call('CLUSTER', 'INFO'), 'cluster_my_epoch:(%d+)') or '')\n" \
    "    if not e or e >= 8388608 then\n"                                          \
    "      return nil, redis.error_reply('FENCEMAX the failover epoch does not fit a fence')\n" \
    "    end\n"                                                                    \
    "    floor_memo = string.format('%.0f', e * 1099511627776)\n"                  \
    "  end\n"                                                                      \
    "  return floor_memo\n"                                                        \
    "end\n"                                                                        \
    "local function raised_fence_of(ki, fl)\n"                                     \
    "  local low, err = epoch_floor(fl)\n"                                         \
    "  if err then return nil, err end\n"                                          \
    "  local f = redis.call('GET', KEYS[ki]) or '0'\n"                             \
    "  if low and dec_lt(f, low) then\n"                                           \
    "    redis.call('SET', KEYS[ki], low)\n"                                       \
    "    f = low\n"                                                                \
    "  end\n"                                                                      \
    "  return f\n"                                                                 \
    "end\n"                                                                        \
    "local function next_fence_of(ki, fl)\n"                                       \
    "  local low, err = epoch_floor(fl)\n"                                         \
    "  if err then return nil, err end\n"                                          \
    "  local f\n"                                                                  \
    DL_LUA_INCR_FENCE("ki")                                                        \
    "  if not f then return nil, err end\n"                                        \
    "  if low and dec_lt(f, low) then\n"                                           \
    "    redis.call('SET', KEYS[ki], low)\n"                                       \
    "    f = low\n"                                                                \
    "  end\n"                                                                      \
    "  return f\n"                                                                 \
    "end\n"

/* The mutex scripts' queue code (DL_LUA_QUEUE: server time, queue head
 * pruning), apart from the fences so that a script's fast path defines
 * only the closures it uses (each Lua closure made costs the server on
 * every call): ACQUIRE and RELEASE reach it only when a holder or a queue
 * exists. */
#define DL_LUA_QUEUE                                                             \
    "local tm, now\n"                                                              \
    "local function clock()\n"                                                     \
    "  if not tm then\n"                                                           \
    "    tm = redis.call('TIME')\n"                                                \
    "    now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"     \
    "  end\n"                                                                      \
    "  return now\n"                                                               \
    "end\n"                                                                        \
    "local function head()\n"                                                      \
    "  while true do\n"                                                            \
    "    local h = redis.call('ZRANGE', KEYS[3], 0, 0)[1]\n"                      \
    "    if not h then return false end\n"                                         \
    "    clock()\n"                                                                \
    "    local v = redis.call('HGET', KEYS[4], h)\n"                              \
    "    local exp = v and tonumber(string.match(v, '^(%d+)')) or 0\n"             \
    "    if exp > now then return h, v, exp end\n"                                 \
    "    redis.call('ZREM', KEYS[3], h)\n"                                         \
    "    redis.call('HDEL', KEYS[4], h)\n"                                         \
    "  end\n"                                                                      \
    "end\n"                                                                        \
    "local function dequeue(tok)\n"                                                \
    "  redis.call('ZREM', KEYS[3], tok)\n"                                         \
    "  redis.call('HDEL', KEYS[4], tok)\n"                                         \
    "end\n"

/* ACQUIRE: ARGV token, ttl_ms, meta, fencing, enqueue(0|1), wait_ms,
 * acquired_ms (the client's wall clock, reported by INSPECT), the waiter's
 * wake channel, and optionally its place in the queue (Redlock: the same
 * score on every server, the client's wall clock in us when the wait
 * began, so the servers' queues agree on the order; absent or "-": the
 * server's TIME at the first enqueue) and the fence's failover floor
 * (next_fence; Sentinel and Cluster only).
 * The server clock (TIME) is read only when a queue exists.
 * fencing: 0 off; 1 INCR the counter (one server, Sentinel, Cluster);
 * 2 only read it (a Redlock member: the client then writes max+1 to a
 * majority with FENCE, or, without fencing, ignores it); 3 INCR it as a Redlock member (the client keeps
 * the value when every granting server reports the same one, else it
 * writes max+1 with FENCE: docs/REDLOCK.md). A waiter queued with 2 or 3
 * is only woken at release, never handed the lock by one server.
 * Calls on a free lock with no queue: HGET, ZCARD, INCR (fencing 1 or 3),
 * HSET, PEXPIRE; TIME and the queue's head are never touched.
 * Returns the fence (a bulk string, "0" without fencing; not {1, fence}:
 * an array reply costs the server ~5k instructions more) when the caller
 * holds the lock now (also when it already held it: an acquire retried
 * after a lost reply is idempotent), or {0, hint_ms, waiters, counter}:
 * hint_ms is the holder's remaining lease, or how long the queue head may
 * still claim a free lock; counter is the fencing counter now, so a waiter
 * can tell a hand-over after this answer (a higher fence) from a stale
 * wake-up. */
#define DL_LUA_ACQUIRE                                                              \
    "local tk, ttl, meta, fm, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[7]\n"   \
    "if not " DL_LUA_TOKEN_OK("tk") " then return " DL_LUA_BAD("token") " end\n"    \
    "if not " DL_LUA_NUM_OK("ttl", DL_LUA_STR(DL_LUA_TTL_MAX)) " then\n"            \
    "  return " DL_LUA_BAD("ttl_ms") "\n"                                           \
    "end\n"                                                                         \
    "if #meta > " DL_LUA_STR(DL_LUA_META_MAX) " then return " DL_LUA_BAD("meta") " end\n" \
    "if fm ~= '0' and fm ~= '1' and fm ~= '2' and fm ~= '3' then return " DL_LUA_BAD("fencing") " end\n" \
    "if ARGV[5] ~= '0' and ARGV[5] ~= '1' then return " DL_LUA_BAD("enqueue") " end\n" \
    "if not " DL_LUA_NUM_OK("ARGV[6]", DL_LUA_STR(DL_LUA_WAIT_MAX)) " then\n"       \
    "  return " DL_LUA_BAD("wait_ms") "\n"                                          \
    "end\n"                                                                         \
    "if not (at == '0' or " DL_LUA_NUM_OK("at", "1000000000000000") ") then\n"     \
    "  return " DL_LUA_BAD("acquired_ms") "\n"                                      \
    "end\n"                                                                         \
    "if ARGV[8] and (#ARGV[8] > " DL_LUA_STR(DL_LUA_CHAN_MAX) " or not string.match(ARGV[8], '^%S+$')) then\n" \
    "  return " DL_LUA_BAD("channel") "\n"                                          \
    "end\n"                                                                         \
    "local sc, fl = ARGV[9], ARGV[10]\n"                                            \
    "if sc and sc ~= '-' and not " DL_LUA_NUM_OK("sc", "9007199254740991") " then\n" \
    "  return " DL_LUA_BAD("score") "\n"                                            \
    "end\n"                                                                         \
    "if not " DL_LUA_FLOOR_OK("fl") " then return " DL_LUA_BAD("floor") " end\n"    \
    "local t = redis.call('HGET', KEYS[1], 't')\n"                                 \
    "local h\n"                                                                     \
    "if t or redis.call('ZCARD', KEYS[3]) > 0 then\n"                               \
    DL_LUA_QUEUE                                                                    \
    "local function enqueue()\n"                                                    \
    "  if ARGV[5] ~= '1' then return end\n"                                         \
    "  local w = tonumber(ARGV[6])\n"                                               \
    "  clock()\n"                                                                   \
    "  local score = tonumber(ARGV[9]) or (tonumber(tm[1]) * 1000000 + tonumber(tm[2]))\n" \
    "  redis.call('ZADD', KEYS[3], 'NX', score, ARGV[1])\n"                         \
    "  redis.call('HSET', KEYS[4], ARGV[1], (now + w) .. ' ' .. ARGV[2] .. ' ' .. ARGV[4] .. ' ' .. ARGV[8] .. ' ' .. ARGV[3])\n" \
    "  for i = 3, 4 do\n"                                                           \
    "    if redis.call('PTTL', KEYS[i]) < w then redis.call('PEXPIRE', KEYS[i], w) end\n" \
    "  end\n"                                                                       \
    "end\n"                                                                         \
    "if t == ARGV[1] then\n"                                                        \
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"                                   \
    "  dequeue(ARGV[1])\n"                                                          \
    "  return redis.call('HGET', KEYS[1], 'f') or '0'\n"                           \
    "end\n"                                                                         \
    "if t then\n"                                                                   \
    "  enqueue()\n"                                                                 \
    "  return {0, redis.call('PTTL', KEYS[1]), redis.call('ZCARD', KEYS[3]),\n"      \
    "          tonumber(redis.call('GET', KEYS[2])) or 0}\n"                         \
    "end\n"                                                                         \
    "local v, exp\n"                                                                \
    "h, v, exp = head()\n"                                                          \
    "if h and h ~= ARGV[1] then\n"                                                  \
    "  enqueue()\n"                                                                 \
    "  return {0, exp - now, redis.call('ZCARD', KEYS[3]),\n"                        \
    "          tonumber(redis.call('GET', KEYS[2])) or 0}\n"                         \
    "end\n"                                                                         \
    "end\n"                                                                         \
    "local f, err = '0'\n"                                                          \
    "if fm == '1' or fm == '3' then\n"                                              \
    "  f = nil\n"                                                                   \
    "  if fl == nil or fl == '' then\n"                                             \
    DL_LUA_INCR_FENCE("2")                                                          \
    "  else\n"                                                                      \
    DL_LUA_FENCES                                                                   \
    "    f, err = next_fence_of(2, fl)\n"                                           \
    "  end\n"                                                                       \
    "elseif fm == '2' then f = redis.call('GET', KEYS[2]) or '0' end\n"             \
    "if not f then return err end\n"                                                \
    "if h then redis.call('ZREM', KEYS[3], h); redis.call('HDEL', KEYS[4], h) end\n" \
    "redis.call('HSET', KEYS[1], 't', tk, 'f', f, 'o', meta, 'a', at)\n"            \
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"                                         \
    "return f\n"

/* RELEASE: ARGV token, and optionally the failover floor of a hand-over's
 * fence (as ACQUIRE's). Returns 0 (not the holder: nothing changed), 1
 * (released), 2 (released and handed to the queue's head). A Redlock
 * waiter at the head (fencing 2 or 3) is only woken ("<token> -1"): one server
 * cannot hand over a lock that needs a majority, so the head takes it with
 * its next ACQUIRE on every server, and no one else can meanwhile (the
 * free lock stays the head's to claim until its entry expires). When no
 * fence can be issued (FENCEMAX) the lock is released but not handed over:
 * the head meets the error at its next attempt.
 * Calls with no queue: HGET, DEL, ZCARD. */
#define DL_LUA_RELEASE                                                              \
    "local fl = ARGV[2]\n"                                                          \
    "if not " DL_LUA_FLOOR_OK("fl") " then return " DL_LUA_BAD("floor") " end\n"    \
    "if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then return 0 end\n"            \
    "redis.call('DEL', KEYS[1])\n"                                                  \
    "if redis.call('ZCARD', KEYS[3]) == 0 then return 1 end\n"                      \
    DL_LUA_FENCES                                                                   \
    DL_LUA_QUEUE                                                                    \
    "local h, v = head()\n"                                                         \
    "if not h then return 1 end\n"                                                  \
    "local ttl, fencing, chan, meta = string.match(v, '^%d+ (%d+) (%d) (%S+) (.*)$')\n" \
    "if fencing == '2' or fencing == '3' then\n"                                    \
    "  redis.pcall('PUBLISH', chan, h .. ' -1')\n"                                  \
    "  return 1\n"                                                                  \
    "end\n"                                                                         \
    "local f = '0'\n"                                                               \
    "if ttl and fencing == '1' then f = next_fence_of(2, fl) end\n"                         \
    "if not f then return 1 end\n"                                                  \
    "dequeue(h)\n"                                                                  \
    "if not ttl then return 1 end\n"                                                \
    "redis.call('HSET', KEYS[1], 't', h, 'f', f, 'o', meta, 'a', now)\n"            \
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"                                         \
    "redis.pcall('PUBLISH', chan, h .. ' ' .. f)\n"                                 \
    "return 2\n"

/* EXTEND: ARGV token, ttl_ms. Returns 1 (extended) or 0 (not the holder). */
#define DL_LUA_EXTEND                                                               \
    "if not " DL_LUA_NUM_OK("ARGV[2]", DL_LUA_STR(DL_LUA_TTL_MAX)) " then\n"       \
    "  return " DL_LUA_BAD("ttl_ms") "\n"                                          \
    "end\n"                                                                         \
    "if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then return 0 end\n"            \
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"                                     \
    "return 1\n"

/* INSPECT: no ARGV. Returns {pttl, token, fence, meta, acquired_ms,
 * last_fence, waiters}; strings are "" when free; the two fences are
 * decimal strings ("0" when none). */
#define DL_LUA_INSPECT                                                              \
    "local v = redis.call('HMGET', KEYS[1], 't', 'f', 'o', 'a')\n"                  \
    "return {redis.call('PTTL', KEYS[1]), v[1] or '', v[2] or '0',\n"               \
    "        v[3] or '', tonumber(v[4]) or 0,\n"                                    \
    "        redis.call('GET', KEYS[2]) or '0', redis.call('ZCARD', KEYS[3])}\n"

/* CANCEL (a waiter gives up): ARGV token, ttl_ms. Leaves the queue;
 * returns {1, fence} if the lock was handed to the caller meanwhile (it
 * keeps it, with its lease restarted at ttl_ms), else {0}. */
#define DL_LUA_CANCEL                                                               \
    "if not " DL_LUA_NUM_OK("ARGV[2]", DL_LUA_STR(DL_LUA_TTL_MAX)) " then\n"       \
    "  return " DL_LUA_BAD("ttl_ms") "\n"                                          \
    "end\n"                                                                         \
    "redis.call('ZREM', KEYS[3], ARGV[1])\n"                                        \
    "redis.call('HDEL', KEYS[4], ARGV[1])\n"                                        \
    "if redis.call('HGET', KEYS[1], 't') == ARGV[1] then\n"                         \
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"                                   \
    "  return {1, redis.call('HGET', KEYS[1], 'f') or '0'}\n"                      \
    "end\n"                                                                         \
    "return {0}\n"

/* FENCE (Redlock, when the granting servers' counters disagree, or after
 * a fencing-2 acquire): ARGV token, candidate. If the caller holds the lock on
 * this server, raise the counter to at least `candidate`, store it as the
 * holder's fence and return the counter (a decimal string); otherwise
 * return -1. With no candidate ("0") it only reads: returns the counter.
 * Decimal strings without leading zeros compare exactly by length, then
 * bytes: no Lua number is involved. */
#define DL_LUA_FENCE                                                                \
    "local c = ARGV[2]\n"                                                           \
    "if c ~= '0' and not (type(c) == 'string' and string.match(c, '^[1-9]%d*$') and\n" \
    "    (#c < 19 or (#c == 19 and c <= '9223372036854775807'))) then\n"            \
    "  return " DL_LUA_BAD("candidate") "\n"                                       \
    "end\n"                                                                        \
    "local cur = redis.call('GET', KEYS[2]) or '0'\n"                               \
    "if ARGV[2] == '0' then return cur end\n"                                       \
    "if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then return -1 end\n"           \
    "if #c > #cur or (#c == #cur and c > cur) then redis.call('SET', KEYS[2], c); cur = c end\n" \
    "redis.call('HSET', KEYS[1], 'f', cur)\n"                                       \
    "return cur\n"

#endif
