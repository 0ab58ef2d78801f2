'use strict';
// The binding on a real Redis Cluster of three masters (issue 13): the
// checks every deployment passes (topology.js), names on each of the three
// masters held at once, and a slot migrated by hand (as `redis-cli
// --cluster reshard` does) under a held lock with a waiter: the release
// follows ASK to the importing node and hands the lock over there, and
// once the slot moved the clients follow MOVED, with fences rising. Then
// onLost of a kept-alive lock: quiet while healthy, called once its key is
// deleted on its slot's master.
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
