#!/usr/bin/env node
'use strict';
// bench/peers/semaphore.js - redis-semaphore's Mutex with ioredis under the dlock-bench
// workloads (see driver.js; usage: node semaphore.js --mode contended|uncontended --port P ...).
//
// Peer settings (the library's defaults):
//   new Mutex(client, name)            one ioredis connection per worker, a new Mutex per
//                                      acquisition (as in the library's README); lockTimeout
//                                      10000 ms (= dlock-bench's default lease),
//                                      acquireTimeout 10000 ms, acquireAttemptsLimit Infinity,
//                                      retryInterval 10 ms (polls SET NX PX every 10 ms),
//                                      refreshInterval 8000 ms (never fires here)
//   mutex.acquire()                    throws TimeoutError after acquireTimeout: the worker
//                                      counts it (gave_up) and calls acquire again
//   mutex.release()                    EVALSHA compare-and-delete
// The key is "mutex:" + name (the library's prefix).
const { Mutex, TimeoutError } = require('redis-semaphore');
const { main } = require('./driver');

main({
  label: 'redis-semaphore',
  version: require('redis-semaphore/package.json').version,
  make: (client, o) => ({ client, name: o.name }),
  acquire: async (ctx) => {
    const m = new Mutex(ctx.client, ctx.name);
    try {
      await m.acquire();
    } catch (e) {
      if (e instanceof TimeoutError) return null;
      throw e;
    }
    return m;
  },
  release: (ctx, m) => m.release(),
}, __filename);
