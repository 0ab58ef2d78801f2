'use strict';
// The binding on a real Sentinel deployment (issue 13): one master, one
// replica, three sentinels (down-after 1 s, as tests/topology uses). The
// checks every deployment passes (topology.js), the lock on the master,
// onLost of a kept-alive lock (quiet while healthy; called once its key is
// deleted on the master), then the master killed: once the sentinels
// promoted the replica, the same client and a new one acquire there, with
// fences above every fence of the old master (the new master's failover
// epoch in the high bits, docs/FAILOVER.md). On a second group, a wait
// queued when the master is killed must be woken by the release on the new
// master. On a third, two kept-alive locks across a failover: the one the
// new master has stays held, the one it lacks is reported lost.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { inspector, until } = require('./helpers');
const {
  startSentinels, replicasAck, lockTests, closeClients, keptAlive, staysHeld, becomesLost, EPOCH_SHIFT,
} = require('./topology');
const { DistributedLock, InvalidLockError } = require('..');

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

// Lost-lock detection: kept alive (ttl 1500 ms, extended every 500 ms),
// nothing reported for four periods and longer than the ttl; then the key
// deleted on the master is found gone at the next extension.
test('sn: onLost quiet while healthy, then called once the key is deleted on the master', T, async (t) => {
  const dl = new DistributedLock(g.url);
  ctx.clients.push(dl);
  const m = inspector(g.master);
  const key = 'dlock:{sn-lost-del}';
  const k = await keptAlive(dl, 'sn-lost-del', 1500);
  await staysHeld(k, 2200, async () => [await m.pttl(key)]);
  const t0 = performance.now();
  await m.del(key);
  const ms = await becomesLost(k, t0, 3000, 'ENOTHELD');
  t.diagnostic(`lost reported ${ms.toFixed(0)} ms after the delete`);
  await assert.rejects(k.h.release(), InvalidLockError);
  m.disconnect();
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

test('sn: a wait queued on the old master rides the failover out, woken by the release', { timeout: 45000 }, async (t) => {
  // A group of its own: the one above has no replica left.
  const g2 = await startSentinels(3);
  const holder = new DistributedLock(g2.url, { connectTimeoutMs: 300, commandTimeoutMs: 500 });
  const waiter = new DistributedLock(g2.url, { connectTimeoutMs: 300, commandTimeoutMs: 500 });
  ctx.clients.push(holder, waiter);
  const name = 'sn-ride';
  // One hand-over: the release began at t0, the waiter had it after ms.
  const handOver = async (h, w) => {
    const t0 = performance.now();
    await h.release();
    const hw = await w;
    return [hw, performance.now() - t0];
  };
  try {
    const h = await holder.acquire(name, 15000);
    const w = waiter.waitForLock(name, 30000, 5000);
    w.catch(() => {}); // awaited below; not unhandled if a check fails first
    await until(async () => (await holder.inspect(name)).waiters >= 1, 5000, 'the waiter queued');
    const m = inspector(g2.master);
    await replicasAck(m, 1, 5000); // the lock and the queue reached the replica
    m.disconnect();
    await g2.master.stop('SIGKILL');
    await g2.waitMaster(g2.replica.port, 20000);
    const epoch = await g2.configEpoch(0);
    // The waiter's wake-up subscription went with the old master: its
    // next attempt must make it again on the new one (the channel is
    // <prefix>wake:<engine id>, docs/PROTOCOL.md), so that the holder's
    // release there wakes it rather than leave it to its 2 s slice.
    const nm = inspector(g2.replica);
    await until(async () => (await nm.call('PUBSUB', 'CHANNELS', 'dlock:wake:*')).length >= 1,
      10000, "the waiter's wake-up subscription on the new master");
    nm.disconnect();
    const [hw, ms] = await handOver(h, w);
    t.diagnostic(`across the failover: woken ${ms.toFixed(1)} ms after the release began`);
    assert.ok(hw.fence > h.fence, `fence ${hw.fence} after ${h.fence}`);
    assert.ok(hw.fence >= BigInt(epoch) << EPOCH_SHIFT, `fence ${hw.fence} below epoch ${epoch}'s floor`);
    assert.ok(ms < ctx.wakeMaxMs, `woken ${ms.toFixed(1)} ms after the release`);
    await hw.release();
    // And the next waits of the same clients, on the new master.
    const h2 = await holder.acquire(name, 15000);
    const w2 = waiter.waitForLock(name, 30000, 5000);
    await until(async () => (await holder.inspect(name)).waiters >= 1, 5000, 'the waiter queued');
    const [hw2, ms2] = await handOver(h2, w2);
    t.diagnostic(`after the failover: woken ${ms2.toFixed(1)} ms after the release began`);
    assert.ok(ms2 < ctx.wakeMaxMs, `woken ${ms2.toFixed(1)} ms after the release`);
    await hw2.release();
  } finally {
    await g2.stop();
  }
});

test('sn: across a failover a kept-alive lock the new master has stays held; one it lacks is lost',
  { timeout: 45000 }, async (t) => {
  // A group of its own: the ones above have no replica left.
  const g3 = await startSentinels(3);
  const dl = new DistributedLock(g3.url, { connectTimeoutMs: 300, commandTimeoutMs: 500 });
  ctx.clients.push(dl);
  try {
    // Extended every 300 ms; the ttl (15 s) outlasts the failover, so the
    // only way to lose a lock is to find it missing on the new master.
    const keep = await keptAlive(dl, 'sn-fo-keep', 15000, 300);
    const gone = await keptAlive(dl, 'sn-fo-gone', 15000, 300);
    const m = inspector(g3.master);
    await replicasAck(m, 1, 5000); // both locks reached the replica
    m.disconnect();
    // The replica, made writable for a moment, forgets one of them (the
    // master's extensions are PEXPIREs: they do not bring it back).
    const r = inspector(g3.replica);
    await r.call('CONFIG', 'SET', 'replica-read-only', 'no');
    assert.equal(await r.del('dlock:{sn-fo-gone}'), 1);
    await r.call('CONFIG', 'SET', 'replica-read-only', 'yes');
    r.disconnect();
    const t0 = performance.now();
    await g3.master.stop('SIGKILL');
    await g3.waitMaster(g3.replica.port, 20000);
    const promoted = performance.now();
    t.diagnostic(`replica promoted ${((promoted - t0) / 1000).toFixed(1)} s after the kill`);
    // Found missing at the first extension on the new master: well within
    // a few seconds of the promotion (the client finds the new master by
    // asking the sentinels again after the old one stopped answering).
    const ms = await becomesLost(gone, t0, promoted - t0 + 5000, 'ENOTHELD');
    t.diagnostic(`the lock the new master lacks: lost ${((ms) / 1000).toFixed(1)} s after the kill`);
    await assert.rejects(gone.h.release(), InvalidLockError);
    // The other one is extended on the new master and never reported lost.
    const nm = inspector(g3.replica);
    assert.equal(await nm.hget('dlock:{sn-fo-keep}', 't'), keep.h.token);
    const p0 = await nm.pttl('dlock:{sn-fo-keep}');
    await until(async () => (await nm.pttl('dlock:{sn-fo-keep}')) > p0, 3000,
      'an extension on the new master');
    assert.equal(keep.lost.length, 0);
    assert.equal(keep.h.isHeld, true);
    await keep.h.release();
    assert.equal(await nm.exists('dlock:{sn-fo-keep}'), 0);
    // The lost name is free on the new master: the same client takes it.
    const again = await dl.acquire('sn-fo-gone', 5000);
    assert.ok(again.fence > gone.h.fence, `fence ${again.fence} after ${gone.h.fence}`);
    await again.release();
    nm.disconnect();
  } finally {
    await g3.stop();
  }
});
