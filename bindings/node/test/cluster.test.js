'use strict';
// The binding on a real Redis Cluster of three masters (issue 13): the
// checks every deployment passes (topology.js), names on each of the three
// masters held at once, and a slot migrated by hand (as `redis-cli
// --cluster reshard` does) under a held lock with a waiter: the release
// follows ASK to the importing node and hands the lock over there, and
// once the slot moved the clients follow MOVED, with fences rising. Then
// onLost of a kept-alive lock: quiet while healthy, called once its key is
// deleted on its slot's master. On a cluster of its own with a replica per
// master, CLUSTER FAILOVER under a kept-alive lock: it stays held, is
// extended and released on the new master, and is taken again.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { until } = require('./helpers');
const {
  startCluster, cmdCalls, lockTests, closeClients, keptAlive, staysHeld, becomesLost,
} = require('./topology');
const { DistributedLock, InvalidLockError } = require('..');

const T = { timeout: 30000 };
// Woken by the hand-over: far below the 2 s a queued waiter sleeps without one.
const ctx = { wakeMs: 100, wakeMaxMs: 500 };
let k;
before(async () => {
  k = await startCluster(3);
  ctx.url = k.url;
});
after(async () => {
  await closeClients(ctx);
  await k.stop();
});

lockTests(ctx, 'cl', T);

// A lock name whose keys live on node `want` (of cluster kk, else k).
async function nameOn(want, tag, kk = k) {
  for (let i = 0; i < 10000; i++) {
    const name = `${tag}-${i}`;
    if ((await kk.ownerOf(await kk.slotOf(`dlock:{${name}}`))) === want) return name;
  }
  throw new Error(`no name on node ${want}`);
}

test('cl: names on each of the three masters, held at once, each on its own master', T, async () => {
  const dl = new DistributedLock(k.url);
  ctx.clients.push(dl);
  const names = [];
  for (let i = 0; i < 3; i++) names.push(await nameOn(i, 'cl-spread'));
  const hs = await Promise.all(names.map((n) => dl.acquire(n, 5000)));
  for (let i = 0; i < 3; i++) {
    assert.equal(await k.looks[i].hget(`dlock:{${names[i]}}`, 't'), hs[i].token, names[i]);
    assert.equal((await dl.inspect(names[i])).token, hs[i].token);
  }
  await Promise.all(hs.map((h) => h.release()));
  for (let i = 0; i < 3; i++) assert.equal(await k.looks[i].exists(`dlock:{${names[i]}}`), 0);
});

test('cl: a slot migrated under a held lock: release through ASK, then MOVED', T, async () => {
  const dl = new DistributedLock(k.url);
  const wc = new DistributedLock(k.url);
  ctx.clients.push(dl, wc);
  const src = 0;
  const dst = 1;
  const name = await nameOn(src, 'cl-move');
  const slot = await k.slotOf(`dlock:{${name}}`);
  const id = await Promise.all(k.looks.map((l) => l.call('CLUSTER', 'MYID')));
  // Both clients' slot maps say src serves the slot. A waiter queues, so
  // that every key of the lock exists (a migrating slot's keys split
  // between two nodes make a multi-key script meet TRYAGAIN).
  const h = await dl.acquire(name, 20000);
  const w = wc.waitForLock(name, 15000, 5000);
  w.catch(() => {}); // awaited below; not unhandled if a check fails first
  await until(async () => (await dl.inspect(name)).waiters >= 1, 5000, 'the waiter queued');

  await k.looks[dst].call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', id[src]);
  await k.looks[src].call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', id[dst]);
  const keys = await k.looks[src].call('CLUSTER', 'GETKEYSINSLOT', slot, 100);
  assert.ok(keys.length >= 2, `keys in slot ${slot}: ${keys}`);
  await k.looks[src].call('MIGRATE', '127.0.0.1', k.nodes[dst].port, '', 0, 5000, 'KEYS', ...keys);
  assert.equal(await k.looks[src].call('CLUSTER', 'COUNTKEYSINSLOT', slot), 0);

  // src has none of the slot's keys now: it answers ASK, and the release
  // reaches dst with ASKING, handing the lock to the waiter there.
  const asking0 = await cmdCalls(k.looks[dst], 'asking');
  await h.release();
  assert.ok((await cmdCalls(k.looks[dst], 'asking')) > asking0, 'no ASKING reached the importing node');
  const hw = await w;
  assert.ok(hw.fence > h.fence, `handed-over fence ${hw.fence} after ${h.fence}`);

  // Finish the move on every master; the clients still map the slot to
  // src, which now answers MOVED.
  await k.looks[dst].call('CLUSTER', 'SETSLOT', slot, 'NODE', id[dst]);
  for (const i of [src, 2]) await k.looks[i].call('CLUSTER', 'SETSLOT', slot, 'NODE', id[dst]);
  await hw.release();
  const h2 = await dl.acquire(name, 5000);
  assert.ok(h2.fence > hw.fence, `fence ${h2.fence} after ${hw.fence}`);
  assert.equal(await k.looks[dst].hget(`dlock:{${name}}`, 't'), h2.token);
  assert.equal(await k.looks[src].call('CLUSTER', 'COUNTKEYSINSLOT', slot), 0);
  await h2.release();
});

// Lost-lock detection: kept alive (ttl 1500 ms, extended every 500 ms),
// nothing reported for four periods and longer than the ttl; then the key
// deleted on its slot's master is found gone at the next extension.
test('cl: onLost quiet while healthy, then called once the key is deleted on its master', T, async (t) => {
  const dl = new DistributedLock(k.url);
  ctx.clients.push(dl);
  const name = await nameOn(2, 'cl-lost');
  const key = `dlock:{${name}}`;
  const kept = await keptAlive(dl, name, 1500);
  await staysHeld(kept, 2200, async () => [await k.looks[2].pttl(key)]);
  const t0 = performance.now();
  assert.equal(await k.looks[2].del(key), 1);
  const ms = await becomesLost(kept, t0, 3000, 'ENOTHELD');
  t.diagnostic(`lost reported ${ms.toFixed(0)} ms after the delete`);
  await assert.rejects(kept.h.release(), InvalidLockError);
});

test('cl: CLUSTER FAILOVER under a kept-alive lock: held, extended and released on the new master',
  { timeout: 60000 }, async (t) => {
  // Three masters with a replica each, a cluster of its own.
  const t0 = performance.now();
  const k6 = await startCluster(3, 1);
  t.diagnostic(`3 masters + 3 replicas up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const dl = new DistributedLock(k6.url, { connectTimeoutMs: 300, commandTimeoutMs: 500 });
    const other = new DistributedLock(k6.url);
    ctx.clients.push(dl, other);
    const m = 0;
    const name = await nameOn(m, 'cl-fo', k6);
    const slot = await k6.slotOf(`dlock:{${name}}`);
    const kept = await keptAlive(dl, name, 15000, 300);
    // The lock reached the replica (WAIT counts this connection's writes:
    // one in the lock's slot, after it).
    await until(async () => {
      await k6.looks[m].set(`dlock:{${name}}:sync`, '1');
      return (await k6.looks[m].call('WAIT', 1, 200)) >= 1;
    }, 5000, 'the replica acknowledging the lock');
    const r = await until(async () => { const i = await k6.replicaOf(m); return i >= 0 ? i : null; },
      5000, `a replica of node ${m} in sync`);
    // A manual failover: the replica takes over once it has caught up;
    // asked again if it timed out (for want of votes).
    const f0 = performance.now();
    let done = false;
    for (let tries = 0; tries < 3 && !done; tries++) {
      await k6.looks[r].call('CLUSTER', 'FAILOVER');
      try {
        await until(async () => (await k6.ownerOf(slot, r)) === r && (await k6.ownerOf(slot, m)) === r,
          7000, `node ${r} serving slot ${slot}`);
        done = true;
      } catch { /* asked again */ }
    }
    assert.ok(done, `CLUSTER FAILOVER of node ${m} to node ${r} did not finish`);
    const took = (performance.now() - f0).toFixed(0);
    t.diagnostic(`node ${r} serves slot ${slot} ${took} ms after CLUSTER FAILOVER`);
    // The keepalive follows the slot (MOVED from the demoted master).
    assert.equal(await k6.looks[r].hget(`dlock:{${name}}`, 't'), kept.h.token);
    const p0 = await k6.looks[r].pttl(`dlock:{${name}}`);
    await until(async () => (await k6.looks[r].pttl(`dlock:{${name}}`)) > p0, 3000,
      'an extension on the new master');
    assert.equal(kept.lost.length, 0);
    assert.equal(kept.h.isHeld, true);
    assert.equal(await other.tryAcquire(name, 5000), null);
    await kept.h.release();
    assert.equal(await k6.looks[r].exists(`dlock:{${name}}`), 0);
    const again = await dl.acquire(name, 5000);
    assert.ok(again.fence > kept.h.fence, `fence ${again.fence} after ${kept.h.fence}`);
    assert.equal(await k6.looks[r].hget(`dlock:{${name}}`, 't'), again.token);
    await again.release();
  } finally {
    await k6.stop();
  }
});
