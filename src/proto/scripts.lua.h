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

/* Argument checks (bounds: DL_LUA_*_MAX in proto.h): num(v, hi) is v as a
 * number if it is a decimal integer 1..hi without sign or leading zero (at
 * most 16 digits; hi at most 2^53, so the number is exact), else nil;
 * token(v) says whether v is 32 lowercase hex digits; bad(what) is the
 * error reply for a refused argument (nothing has been changed when it is
 * returned). */
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

/* Shared prelude, in two parts so that a script's fast path defines only
 * what it uses (each Lua closure made costs the server on every call):
 * DL_LUA_QUEUE (server time, queue head pruning) and DL_LUA_FENCING (the
 * next fence, the floor check).
 * Fences never pass through an inexact Lua number (a double: exact only up
 * to 2^53): the counter is INCRed; below 2^53 the reply is exact and is
 * formatted as a decimal string, above it is read back with GET as one.
 * That string is what is stored, published and returned. next_fence()
 * returns nil and an error reply when INCR fails (FENCEMAX once the
 * counter is at 2^63-1), having changed nothing.
 * The failover floor (docs/FAILOVER.md): next_fence(fl) raises the counter
 * to at least fl, so a fence is never below epoch * 2^40, where epoch is
 * the failover epoch of the master issuing it: fl is that floor in decimal
 * (Sentinel: the client's, from the master's config-epoch), or "cluster"
 * (this node's own configEpoch, from CLUSTER INFO), or absent (one server,
 * Redlock: no floor). floor_ok(v) checks such an argument. */
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

#define DL_LUA_FENCING                                                             \
    "local function floor_ok(v)\n"                                                 \
    "  return v == nil or v == '' or v == 'cluster' or v == '0' or\n"             \
    "    (string.match(v, '^[1-9]%d*$') and (#v < 19 or (#v == 19 and v <= '9223372036854775807')))\n" \
    "end\n"                                                                        \
    "local function next_fence(fl)\n"                                             \
    "  local n = redis.pcall('INCR', KEYS[2])\n"                                  \
    "  if type(n) == 'table' then\n"                                              \
    "    if redis.call('GET', KEYS[2]) ~= '9223372036854775807' then return nil, n end\n" \
    "    return nil, redis.error_reply('FENCEMAX the fencing counter is at 2^63-1: no higher fence can be issued')\n" \
    "  end\n"                                                                      \
    "  local f = n < 9007199254740992 and string.format('%d', n) or redis.call('GET', KEYS[2])\n" \
    "  if fl == 'cluster' then\n"                                                  \
    "    local e = tonumber(string.match(redis.call('CLUSTER', 'INFO'), 'cluster_my_epoch:(%d+)') or '')\n" \
    "    if not e or e >= 8388608 then\n"                                          \
    "      return nil, redis.error_reply('FENCEMAX the failover epoch does not fit a fence')\n" \
    "    end\n"                                                                    \
    "    fl = string.format('%.0f', e * 1099511627776)\n"                          \
    "  end\n"                                                                      \
    "  if fl and fl ~= '' and (#f < #fl or (#f == #fl and f < fl)) then\n"          \
    "    redis.call('SET', KEYS[2], fl)\n"                                         \
    "    f = fl\n"                                                                 \
    "  end\n"                                                                      \
    "  return f\n"                                                                 \
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
 * majority with FENCE); 3 INCR it as a Redlock member (the client keeps
 * the value when every granting server reports the same one, else it
 * writes max+1 with FENCE: docs/REDLOCK.md). A waiter queued with 2 or 3
 * is only woken at release, never handed the lock by one server.
 * Calls on a free lock with no queue: HGET, ZCARD, INCR (fencing 1 or 3),
 * HSET, PEXPIRE; TIME and the queue's head are never touched.
 * Returns {1, fence} when the caller holds the lock now (also when it
 * already held it: an acquire retried after a lost reply is idempotent), or
 * {0, hint_ms, waiters, counter}: hint_ms is the holder's remaining lease,
 * or how long the queue head may still claim a free lock; counter is the
 * fencing counter now, so a waiter can tell a hand-over after this answer
 * (a higher fence) from a stale wake-up. */
#define DL_LUA_ACQUIRE                                                              \
    DL_LUA_ARGS                                                                     \
    "if not token(ARGV[1]) then return bad('token') end\n"                          \
    "if not num(ARGV[2], TTL_MAX) then return bad('ttl_ms') end\n"                  \
    "if #ARGV[3] > " DL_LUA_STR(DL_LUA_META_MAX) " then return bad('meta') end\n"  \
    "local fm = ARGV[4]\n"                                                          \
    "if fm ~= '0' and fm ~= '1' and fm ~= '2' and fm ~= '3' then return bad('fencing') end\n" \
    "if ARGV[5] ~= '0' and ARGV[5] ~= '1' then return bad('enqueue') end\n"         \
    "if not num(ARGV[6], " DL_LUA_STR(DL_LUA_WAIT_MAX) ") then return bad('wait_ms') end\n" \
    "if not (ARGV[7] == '0' or num(ARGV[7], 1e15)) then return bad('acquired_ms') end\n" \
    "if ARGV[8] and (#ARGV[8] > " DL_LUA_STR(DL_LUA_CHAN_MAX) " or not string.match(ARGV[8], '^%S+$')) then\n" \
    "  return bad('channel')\n"                                                    \
    "end\n"                                                                        \
    "if ARGV[9] and ARGV[9] ~= '-' and not num(ARGV[9], 9007199254740991) then return bad('score') end\n" \
    DL_LUA_FENCING                                                                  \
    "if not floor_ok(ARGV[10]) then return bad('floor') end\n"                     \
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
    "  return {1, redis.call('HGET', KEYS[1], 'f') or '0'}\n"                      \
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
    "if ARGV[4] == '1' or ARGV[4] == '3' then f, err = next_fence(ARGV[10])\n"     \
    "elseif ARGV[4] == '2' then f = redis.call('GET', KEYS[2]) or '0' end\n"        \
    "if not f then return err end\n"                                                \
    "if h then redis.call('ZREM', KEYS[3], h); redis.call('HDEL', KEYS[4], h) end\n" \
    "redis.call('HSET', KEYS[1], 't', ARGV[1], 'f', f, 'o', ARGV[3], 'a', ARGV[7])\n" \
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"                                     \
    "return {1, f}\n"

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
    DL_LUA_FENCING                                                                  \
    "if not floor_ok(ARGV[2]) then return redis.error_reply('ERR dlock: bad argument: floor') end\n" \
    "if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then return 0 end\n"            \
    "redis.call('DEL', KEYS[1])\n"                                                  \
    "if redis.call('ZCARD', KEYS[3]) == 0 then return 1 end\n"                      \
    DL_LUA_QUEUE                                                                    \
    "local h, v = head()\n"                                                         \
    "if not h then return 1 end\n"                                                  \
    "local ttl, fencing, chan, meta = string.match(v, '^%d+ (%d+) (%d) (%S+) (.*)$')\n" \
    "if fencing == '2' or fencing == '3' then\n"                                    \
    "  redis.pcall('PUBLISH', chan, h .. ' -1')\n"                                  \
    "  return 1\n"                                                                  \
    "end\n"                                                                         \
    "local f = '0'\n"                                                               \
    "if ttl and fencing == '1' then f = next_fence(ARGV[2]) end\n"                         \
    "if not f then return 1 end\n"                                                  \
    "dequeue(h)\n"                                                                  \
    "if not ttl then return 1 end\n"                                                \
    "redis.call('HSET', KEYS[1], 't', h, 'f', f, 'o', meta, 'a', now)\n"            \
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"                                         \
    "redis.pcall('PUBLISH', chan, h .. ' ' .. f)\n"                                 \
    "return 2\n"

/* EXTEND: ARGV token, ttl_ms. Returns 1 (extended) or 0 (not the holder). */
#define DL_LUA_EXTEND                                                               \
    DL_LUA_ARGS                                                                     \
    "if not num(ARGV[2], TTL_MAX) then return bad('ttl_ms') end\n"                  \
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
    DL_LUA_ARGS                                                                     \
    "if not num(ARGV[2], TTL_MAX) then return bad('ttl_ms') end\n"                  \
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
    DL_LUA_ARGS                                                                     \
    "local c = ARGV[2]\n"                                                           \
    "if c ~= '0' and not (type(c) == 'string' and string.match(c, '^[1-9]%d*$') and\n" \
    "    (#c < 19 or (#c == 19 and c <= '9223372036854775807'))) then\n"            \
    "  return bad('candidate')\n"                                                  \
    "end\n"                                                                        \
    "local cur = redis.call('GET', KEYS[2]) or '0'\n"                               \
    "if ARGV[2] == '0' then return cur end\n"                                       \
    "if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then return -1 end\n"           \
    "if #c > #cur or (#c == #cur and c > cur) then redis.call('SET', KEYS[2], c); cur = c end\n" \
    "redis.call('HSET', KEYS[1], 'f', cur)\n"                                       \
    "return cur\n"

#endif
