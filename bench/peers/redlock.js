#!/usr/bin/env node
'use strict';
// bench/peers/redlock.js - node-redlock v5 (beta) with ioredis under the dlock-bench
// workloads (see driver.js; usage: node redlock.js --mode contended|uncontended --port P ...).
//
// Peer settings (the library's defaults):
//   new Redlock([client])              one server, one ioredis connection per worker
//                                      (with --ports: new Redlock([c1, c2, c3]), one
//                                      connection to each server of a Redlock set);
//                                      driftFactor 0.01, retryCount 10, retryDelay 200 ms,
//                                      retryJitter 100 ms (each retry sleeps 100..300 ms)
//   redlock.acquire([name], ttl)       ttl = dlock-bench's default lease, 10000 ms
//   lock.release()                     EVALSHA compare-and-delete
// With retryCount 10 an acquire gives up after 11 attempts (about 2.2 s) and throws an
// ExecutionError: the worker counts it (gave_up) and calls acquire again.
const { default: Redlock, ExecutionError } = require('redlock');
const { main } = require('./driver');

main({
  label: 'node-redlock',
  version: JSON.parse(require('node:fs').readFileSync(`${__dirname}/node_modules/redlock/package.json`)).version,
  make: (client, o, all) => ({ redlock: new Redlock(all || [client]), name: o.name, ttl: o.ttl }),
  acquire: async (ctx) => {
    try {
      return await ctx.redlock.acquire([ctx.name], ctx.ttl);
    } catch (e) {
      if (e instanceof ExecutionError) return null;
      throw e;
    }
  },
  release: (ctx, lock) => lock.release(),
}, __filename);
