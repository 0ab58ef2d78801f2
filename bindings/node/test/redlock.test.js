'use strict';
// The binding on a Redlock set of three independent redis-servers (issue
// 13): the checks every deployment passes (topology.js), onLost of a
// kept-alive lock (quiet while healthy; called once the keys are deleted
// on a majority, or two servers of a set of its own are killed), the lock
// on every server, and a majority enough when one server is gone.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { inspector, until } = require('./helpers');
const { startRedlock, lockTests, closeClients, keptAlive, staysHeld, becomesLost } = require('./topology');
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

// Lost-lock detection: a lock kept alive (ttl 1500 ms, extended every
// 500 ms) must report nothing while the set is healthy, for four periods
// and longer than its ttl, and be reported lost once a majority no longer
// has it: at the next extension when the keys are deleted, by the end of
// its validity when the servers are gone.
test('rl: onLost quiet while healthy, then called once the keys are deleted on a majority', T, async (t) => {
  const dl = new DistributedLock(rl.url);
  ctx.clients.push(dl);
  const looks = rl.servers.map((s) => inspector(s));
  const key = 'dlock:{rl-lost-del}';
  const k = await keptAlive(dl, 'rl-lost-del', 1500);
  await staysHeld(k, 2200, () => Promise.all(looks.map((r) => r.pttl(key))));
  const t0 = performance.now();
  await Promise.all([looks[0].del(key), looks[1].del(key)]);
  const ms = await becomesLost(k, t0, 3000, 'ENOTHELD');
  t.diagnostic(`lost reported ${ms.toFixed(0)} ms after the deletes`);
  // The release still cleans up by token: the third server's copy goes.
  // It resolves, as a Redlock release does when any server released
  // (docs/PROTOCOL.md), although the lock was reported lost.
  await k.h.release();
  assert.equal(await looks[2].exists(key), 0);
  for (const r of looks) r.disconnect();
});

test('rl: onLost called when two of the three servers are killed under a kept-alive lock', T, async (t) => {
  const own = await startRedlock(3); // a set of its own: two of its servers die
  try {
    const dl = new DistributedLock(own.url, { connectTimeoutMs: 300, commandTimeoutMs: 300 });
    ctx.clients.push(dl);
    const looks = own.servers.map((s) => inspector(s));
    const k = await keptAlive(dl, 'rl-lost-kill', 1500);
    await staysHeld(k, 2200, () => Promise.all(looks.map((r) => r.pttl('dlock:{rl-lost-kill}'))));
    for (const r of looks) r.disconnect();
    const t0 = performance.now();
    await Promise.all([own.servers[0].stop('SIGKILL'), own.servers[1].stop('SIGKILL')]);
    // No extension can reach a majority now: lost when the validity ends,
    // at most a ttl after the last renewal.
    const ms = await becomesLost(k, t0, 4000);
    const { code, detail } = k.lost[0].err;
    t.diagnostic(`lost reported ${ms.toFixed(0)} ms after the kills (${code}: ${detail})`);
    // The error says what happened: not found gone, but not renewed in time.
    assert.equal(k.lost[0].err.code, 'ETIMEDOUT'); // as the C library's keepalive thread says
    assert.match(k.lost[0].err.detail, /could not be extended before its lease ran out/);
    await assert.rejects(k.h.release(), (e) => e.code === 'ENOQUORUM');
  } finally {
    await own.stop();
  }
});

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
