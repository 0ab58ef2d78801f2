#!/usr/bin/env node
'use strict';
// bench/peers/dlock-node.js - dlock's Node binding (bindings/node, its addon built)
// under the same driver as the Node peers (see driver.js; usage: node dlock-node.js
// --mode contended|uncontended --port P ...), so that all of them are timed by the
// same loop in the same runtime.
//
// Settings (the binding's defaults):
//   new DistributedLock(url)           one per worker: its own connections (the
//                                      driver's ioredis connection does the critical
//                                      section, as for the peers)
//   uncontended: dl.acquire(name, ttl) the seed's acquire (one ACQUIRE when free)
//   contended:   dl.waitForLock(name, 30000, ttl)
//                                      FIFO, woken by the release, as dlock-bench's
//                                      dlock_wait with the same 30 s timeout; a
//                                      LockAcquisitionError counts as gave_up
//   handle.release()                   RELEASE, which hands the lock to the next waiter
// ttl = dlock-bench's default lease, 10000 ms.
const path = require('node:path');
const { main } = require('./driver');

const pkg = path.resolve(__dirname, '..', '..', 'bindings', 'node');
const { DistributedLock, LockAcquisitionError } = require(pkg);

main({
  label: 'dlock-node',
  version: require(path.join(pkg, 'package.json')).version,
  make: (client, o) => ({
    dl: new DistributedLock(`redis://127.0.0.1:${o.port}`),
    name: o.name,
    ttl: o.ttl,
    wait: o.mode === 'contended',
  }),
  acquire: async (ctx) => {
    try {
      return ctx.wait ? await ctx.dl.waitForLock(ctx.name, 30000, ctx.ttl)
        : await ctx.dl.acquire(ctx.name, ctx.ttl);
    } catch (e) {
      if (e instanceof LockAcquisitionError) return null;
      throw e;
    }
  },
  release: (ctx, h) => h.release(),
}, __filename);
