'use strict';
// The binding on a Redlock set of three independent redis-servers (issue
// 13): the checks every deployment passes (topology.js), the lock on
// every server, and a majority enough when one server is gone.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { inspector, until } = require('./helpers');
const { startRedlock, lockTests, closeClients } = require('./topology');
const { DistributedLock } = require('..');

const T = { timeout: 30000 };
// A queued Redlock waiter re-attempts every 250 ms at most
// (SLICE_REDLOCK_MS), and that slice is also what a missed wake-up costs
// (acquire_shared.c: a master's wake-up sent before the others are free is
// only a hint): most hand-overs must come well before it, none much after.
const ctx = { wakeMs: 100, wakeMaxMs: 600 };
let rl;
before(async () => {
  rl = await startRedlock(3);
  ctx.url = rl.url;
});
after(async () => {
  await closeClients(ctx);
  await rl.stop();
});

lockTests(ctx, 'rl', T);

test('rl: the lock is on every server; with one of three gone a majority still grants it', T, async () => {
  const dl = new DistributedLock(rl.url, { connectTimeoutMs: 300, commandTimeoutMs: 300 });
  ctx.clients.push(dl);
  const looks = rl.servers.map((s) => inspector(s));
  const name = 'rl-quorum';
  const holding = async () => (await Promise.all(looks.map((r) => r.exists(`dlock:{${name}}`))))
    .reduce((a, b) => a + b);
  const h = await dl.acquire(name, 5000);
  // The acquire settles once a majority granted it; the third may lag.
  await until(async () => (await holding()) === 3, 3000, 'the lock on all three servers');
  await h.release();
  assert.equal(await holding(), 0);
  for (const r of looks) r.disconnect();
  await rl.servers[2].stop('SIGKILL');
  const h2 = await dl.acquire(name, 5000);
  assert.ok(h2.fence > h.fence, `fence ${h2.fence} after ${h.fence}`);
  assert.equal(await dl.tryAcquire(name, 1000), null);
  await h2.release();
});
