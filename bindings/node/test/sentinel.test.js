'use strict';
// The binding on a real Sentinel deployment (issue 13): one master, one
// replica, three sentinels (down-after 1 s, as tests/topology uses). The
// checks every deployment passes (topology.js), the lock on the master,
// then the master killed: once the sentinels promoted the replica, the
// same client and a new one acquire there, with fences above every fence
// of the old master (the new master's failover epoch in the high bits,
// docs/FAILOVER.md).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { inspector } = require('./helpers');
const { startSentinels, replicasAck, lockTests, closeClients, EPOCH_SHIFT } = require('./topology');
const { DistributedLock } = require('..');

const T = { timeout: 30000 };
// Woken by the hand-over: far below the 2 s a queued waiter sleeps without one.
const ctx = { wakeMs: 100, wakeMaxMs: 500 };
let g;
before(async () => {
  g = await startSentinels(3);
  ctx.url = g.url;
});
after(async () => {
  await closeClients(ctx);
  await g.stop();
});

lockTests(ctx, 'sn', T);

test('sn: the lock lives on the master the sentinels name', T, async () => {
  const dl = new DistributedLock(g.url);
  ctx.clients.push(dl);
  const m = inspector(g.master);
  const r = inspector(g.replica);
  const h = await dl.acquire('sn-where', 5000);
  assert.equal(await m.hget('dlock:{sn-where}', 't'), h.token);
  await h.release();
  m.disconnect();
  r.disconnect();
});

test('sn: after a failover (master killed) a new acquire succeeds with a higher fence', { timeout: 45000 }, async (t) => {
  const old = new DistributedLock(g.url, { connectTimeoutMs: 300, commandTimeoutMs: 500 });
  ctx.clients.push(old);
  const name = 'sn-failover';
  const h = await old.acquire(name, 5000);
  const before = h.fence;
  await h.release();
  assert.ok(before < 1n << EPOCH_SHIFT, `no failover yet: fence ${before} is the plain counter`);
  // The counter reached the replica before the master goes.
  const m = inspector(g.master);
  await replicasAck(m, 1, 5000);
  m.disconnect();
  const t0 = performance.now();
  await g.master.stop('SIGKILL');
  await g.waitMaster(g.replica.port, 20000);
  t.diagnostic(`replica promoted ${((performance.now() - t0) / 1000).toFixed(1)} s after the kill`);
  const epoch = await g.configEpoch(0);
  assert.ok(epoch >= 1, `config-epoch ${epoch}`);

  // The client that knew the old master follows the sentinels to the new one.
  const h2 = await old.acquire(name, 5000);
  assert.ok(h2.fence > before, `fence ${h2.fence} after ${before}`);
  assert.ok(h2.fence >= BigInt(epoch) << EPOCH_SHIFT, `fence ${h2.fence} below epoch ${epoch}'s floor`);
  const r = inspector(g.replica);
  assert.equal(await r.hget(`dlock:{${name}}`, 't'), h2.token);
  // A new client finds the same master: the lock is held there.
  const fresh = new DistributedLock(g.url);
  ctx.clients.push(fresh);
  assert.equal(await fresh.tryAcquire(name, 5000), null);
  const w = fresh.waitForLock(name, 5000, 5000);
  w.catch(() => {}); // awaited below; not unhandled if a check fails first
  await h2.release();
  const h3 = await w;
  assert.ok(h3.fence > h2.fence, `fence ${h3.fence} after ${h2.fence}`);
  await h3.release();
  r.disconnect();
});
