#!/usr/bin/env node
'use strict';
// bench/peers/seed.js - the seed's own design (the TypeScript package dlock re-creates,
// ../../../shared/reference/seed-distributed-lock.md) rebuilt on ioredis, under the
// dlock-bench workloads (see driver.js; usage: node seed.js --mode contended|uncontended
// --port P ...). The seed's code is not published; this follows its document:
//
//   token                    a UUID v4 per acquire (the seed uses the uuid package;
//                            crypto.randomUUID makes the same kind of value)
//   ACQUIRE_LOCK_SCRIPT      EVAL of Lua: SET key token NX PX ttl -> 1, else 0
//   RELEASE_LOCK_SCRIPT      EVAL of Lua: GET key == token -> DEL, 1; else 0
//                            ("All operations are single Redis commands (EVAL with Lua
//                            scripts)": EVAL every time, not EVALSHA)
//   acquire(key, ttl)        first attempt at once, then retries after 100 ms * 2^(n-1)
//                            (retryDelayMs 100, doubling, as the document's example);
//                            the document gives no retry count: 10 here (dlock's
//                            seed-compatible default), then LockAcquisitionError, which
//                            the worker counts as gave_up and calls acquire again
//   key                      the name as given (the seed's keys carry no prefix of
//                            their own in the document)
// ttl = dlock-bench's default lease, 10000 ms.
const { randomUUID } = require('node:crypto');
const { main } = require('./driver');

const ACQUIRE_LOCK_SCRIPT = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0`;
const RELEASE_LOCK_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;
const RETRIES = 10;
const RETRY_DELAY_MS = 100;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

main({
  label: 'seed',
  version: 'design',
  make: (client, o) => ({ client, name: o.name, ttl: o.ttl }),
  acquire: async (ctx) => {
    const token = randomUUID();
    for (let attempt = 1; attempt <= RETRIES + 1; attempt++) {
      if (attempt > 1) await sleep(RETRY_DELAY_MS * 2 ** (attempt - 2));
      const ok = await ctx.client.eval(ACQUIRE_LOCK_SCRIPT, 1, ctx.name, token, ctx.ttl);
      if (ok === 1) return { token };
    }
    return null; // the seed throws LockAcquisitionError here
  },
  release: async (ctx, h) => {
    if ((await ctx.client.eval(RELEASE_LOCK_SCRIPT, 1, ctx.name, h.token)) !== 1)
      throw new Error('InvalidLockError: the lock was not held');
  },
}, __filename);
