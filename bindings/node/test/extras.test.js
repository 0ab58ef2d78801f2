'use strict';
// Beyond the seed: fences, inspect, automatic extension and onLost,
// Symbol.asyncDispose, AbortSignal, close(), bad input, other deployments.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const os = require('os');
const { startServer, inspector, until, sleep } = require('./helpers');
const { DistributedLock, LockAcquisitionError, InvalidLockError, DlockError } = require('..');

const T = { timeout: 30000 };
const asyncDispose = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose');

let srv, dl, other, rc;
before(async () => {
  srv = await startServer();
  dl = new DistributedLock(srv.url, { ownerLabel: 'node-test' });
  other = new DistributedLock(srv.url);
  rc = inspector(srv);
});
after(async () => {
  await dl.close();
  await other.close();
  rc.disconnect();
  await srv.stop();
});

test('fence: a bigint, strictly rising across holders and clients', T, async () => {
  let last = 0n;
  for (let i = 0; i < 6; i++) {
    const h = await (i % 2 ? other : dl).acquire('x-fence', 5000);
    assert.equal(typeof h.fence, 'bigint');
    assert.ok(h.fence > last, `${h.fence} after ${last}`);
    assert.equal(h.info.fence, h.fence);
    last = h.fence;
    await h.release();
  }
  assert.equal(BigInt(await rc.get('dlock:{x-fence}:fence')), last);
});

test('fence: exact beyond 2^53 (int64 end to end)', T, async () => {
  await rc.set('dlock:{x-bigfence}:fence', '9007199254740993'); // 2^53 + 1
  const h = await dl.acquire('x-bigfence', 5000);
  assert.equal(h.fence, 9007199254740994n);
  assert.equal((await dl.inspect('x-bigfence')).fence, 9007199254740994n);
  await h.release();
});

test('inspect: who holds it (host, pid, label, fence, pttl, token, waiters)', T, async () => {
  const free = await dl.inspect('x-insp');
  assert.equal(free.locked, false);
  assert.equal(free.pttl, -1);
  const h = await dl.acquire('x-insp', 10000);
  const w1 = other.waitForLock('x-insp', 5000, 1000);
  const w2 = other.waitForLock('x-insp', 5000, 1000);
  const i = await until(async () => {
    const v = await other.inspect('x-insp');
    return v.waiters === 2 && v;
  }, 3000, 'two waiters');
  assert.equal(i.locked, true);
  assert.equal(i.host, os.hostname());
  assert.equal(i.pid, process.pid);
  assert.equal(i.label, 'node-test');
  assert.equal(i.fence, h.fence);
  assert.equal(i.token, h.token);
  assert.ok(i.pttl > 8000 && i.pttl <= 10000);
  assert.ok(Math.abs(i.acquiredAt - h.info.acquiredAt) < 50);
  await h.release();
  const a = await w1;
  await a.release();
  const b = await w2;
  await b.release();
});

test('autoExtend keeps a short lease alive, and release stops it', T, async () => {
  const h = await dl.acquire('x-keep', 300, { autoExtend: 100 });
  await sleep(1000);
  assert.equal(h.isHeld, true);
  const pttl = await rc.pttl('dlock:{x-keep}');
  assert.ok(pttl > 0 && pttl <= 300, `pttl ${pttl}`);
  await h.release();
  assert.equal(await rc.exists('dlock:{x-keep}'), 0);
});

test('startAutoExtend / stopAutoExtend on a handle; the client option', T, async () => {
  const kd = new DistributedLock(srv.url, { autoExtend: true });
  const h = await kd.acquire('x-keep2', 300); // ttl/3
  await sleep(700);
  assert.equal(h.isHeld, true);
  h.stopAutoExtend();
  await sleep(400);
  assert.equal(h.isHeld, false);
  assert.equal(await rc.exists('dlock:{x-keep2}'), 0);
  const h2 = await dl.acquire('x-keep2', 300);
  h2.startAutoExtend(100);
  await sleep(600);
  assert.equal(h2.isHeld, true);
  assert.throws(() => h2.startAutoExtend(300), (e) => e instanceof DlockError && e.code === 'EINVAL');
  await h2.release();
  await kd.close();
});

test('onLost: called (and "lost" emitted) when the key is deleted while kept alive', T, async () => {
  const seen = [];
  const h = await dl.acquire('x-lost', 1000, {
    autoExtend: 100,
    onLost: (err, handle) => seen.push(['cb', err, handle]),
  });
  h.on('lost', (err) => seen.push(['event', err]));
  const t0 = Date.now();
  await rc.del('dlock:{x-lost}');
  await until(() => seen.length === 2, 3000, 'onLost and the lost event');
  const ms = Date.now() - t0;
  assert.ok(ms < 500, `lost noticed after ${ms} ms`);
  assert.equal(seen[0][0], 'cb');
  assert.ok(seen[0][1] instanceof InvalidLockError);
  assert.equal(seen[0][1].code, 'ENOTHELD');
  assert.equal(seen[0][2], h);
  assert.equal(seen[1][1], seen[0][1]);
  assert.equal(h.isHeld, false);
  await assert.rejects(h.release(), InvalidLockError);
});

test('Symbol.asyncDispose releases (await using); a lost lock is not an error there', T, async () => {
  const h = await dl.acquire('x-dispose', 5000);
  await h[asyncDispose]();
  assert.equal(h.isHeld, false);
  assert.equal(await rc.exists('dlock:{x-dispose}'), 0);
  await h[asyncDispose](); // twice: nothing
  const g = await dl.acquire('x-dispose', 5000);
  await rc.del('dlock:{x-dispose}');
  await g[asyncDispose]();
  const c = new DistributedLock(srv.url);
  await c[asyncDispose]();
  await assert.rejects(c.tryAcquire('x', 100), DlockError);
});

test('AbortSignal: cancels a wait at once and leaves the wait queue empty', T, async () => {
  const h = await other.acquire('x-abort', 10000);
  const ac = new AbortController();
  const w = dl.waitForLock('x-abort', 10000, 5000, { signal: ac.signal });
  await until(async () => (await rc.zcard('dlock:{x-abort}:q')) === 1, 3000, 'the waiter queued');
  const t0 = Date.now();
  ac.abort();
  await assert.rejects(w, (e) => e.name === 'AbortError');
  assert.ok(Date.now() - t0 < 200);
  await until(async () => (await rc.zcard('dlock:{x-abort}:q')) === 0, 3000, 'an empty queue');
  assert.equal(await rc.hlen('dlock:{x-abort}:qi'), 0);
  await h.release();
  assert.equal(await rc.exists('dlock:{x-abort}'), 0); // not handed to the cancelled waiter
});

test('AbortSignal: an aborted signal rejects with its reason; AbortSignal.timeout works', T, async () => {
  const ac = new AbortController();
  const reason = new Error('no longer needed');
  ac.abort(reason);
  await assert.rejects(dl.acquire('x-abort2', 1000, { signal: ac.signal }), (e) => e === reason);
  const h = await other.acquire('x-abort2', 10000);
  const t0 = Date.now();
  await assert.rejects(dl.waitForLock('x-abort2', 10000, 1000, { signal: AbortSignal.timeout(150) }),
    (e) => e.name === 'TimeoutError');
  assert.ok(Date.now() - t0 < 1000);
  await until(async () => (await rc.zcard('dlock:{x-abort2}:q')) === 0, 3000, 'an empty queue');
  await h.release();
  // A signal that is never aborted changes nothing.
  const g = await dl.acquire('x-abort2', 1000, { signal: new AbortController().signal });
  await g.release();
});

test('close(): waits in flight reject (ECANCELED) and leave the queue; handles stop being held', T, async () => {
  const c = new DistributedLock(srv.url);
  const h = await c.acquire('x-close', 10000);
  const k = await c.acquire('x-close-kept', 1000, { autoExtend: 100 });
  const blocker = await other.acquire('x-close2', 10000);
  const w = c.waitForLock('x-close2', 10000, 1000);
  const w2 = c.waitForLock('x-close2', 10000, 1000);
  await until(async () => (await rc.zcard('dlock:{x-close2}:q')) === 2, 3000, 'queued');
  const cancelled = (e) => e instanceof DlockError && e.code === 'ECANCELED';
  const rejected = Promise.all([assert.rejects(w, cancelled), assert.rejects(w2, cancelled)]);
  const t0 = Date.now();
  await c.close();
  assert.ok(Date.now() - t0 < 1000);
  await rejected;
  assert.equal(await rc.zcard('dlock:{x-close2}:q'), 0);
  assert.equal(k.isHeld, false);
  assert.deepEqual({ ...c[Symbol.for('dlock.stats')]() }, { locks: 0, inflight: 0, active: 0 });
  assert.equal(h.isHeld, false);
  await assert.rejects(c.acquire('x-close3', 1000), (e) => e instanceof DlockError && e.code === 'EINVAL');
  await c.close(); // twice: nothing
  // The lease was not released: it ends by its TTL (here: by hand).
  assert.equal(await rc.exists('dlock:{x-close}'), 1);
  await rc.del('dlock:{x-close}');
  await blocker.release();
});

test('bad input: TypeError for wrong types, EINVAL from the library for bad values', T, async () => {
  await assert.rejects(dl.acquire(42, 1000), TypeError);
  await assert.rejects(dl.acquire('a\0b', 1000), TypeError);
  await assert.rejects(dl.acquire('x', 'soon'), TypeError);
  await assert.rejects(dl.waitForLock('x', undefined, 1000), TypeError);
  await assert.rejects(dl.acquire('', 1000), (e) => e instanceof DlockError && e.code === 'EINVAL');
  await assert.rejects(dl.acquire('x', 0), (e) => e.code === 'EINVAL');
  await assert.rejects(dl.acquire('x'.repeat(600), 1000), (e) => e.code === 'EINVAL');
  await assert.rejects(dl.inspect(null), TypeError);
  assert.throws(() => new DistributedLock('nope://x'), (e) => e instanceof DlockError && e.code === 'EINVAL');
  assert.throws(() => new DistributedLock({}), TypeError);
  assert.throws(() => new DistributedLock(srv.url, { waiting: 'sometimes' }), TypeError);
});

test('the default ttl (defaultTtlMs) applies when ttl is omitted', T, async () => {
  const c = new DistributedLock(srv.url, { defaultTtlMs: 4000 });
  const h = await c.acquire('x-defttl');
  const pttl = await rc.pttl('dlock:{x-defttl}');
  assert.ok(pttl > 3000 && pttl <= 4000, `pttl ${pttl}`);
  await h.release();
  await c.close();
});

test('an unreachable server: EIO within the connect timeout, no hang', T, async () => {
  const gone = await startServer();
  await gone.stop();
  const c = new DistributedLock(gone.url, { connectTimeoutMs: 300, commandTimeoutMs: 300 });
  const t0 = Date.now();
  await assert.rejects(c.tryAcquire('x', 1000), (e) => e instanceof DlockError && e.code === 'EIO');
  assert.ok(Date.now() - t0 < 2000);
  await c.close();
});

test('Sentinel and Cluster URLs: a failed discovery rejects with its reason', T, async () => {
  for (const [url, words] of [['redis-sentinel://127.0.0.1:1/m', 'no master'],
    ['redis-cluster://127.0.0.1:1', 'slot map']]) {
    const c = new DistributedLock(url, { connectTimeoutMs: 300, commandTimeoutMs: 300 });
    await assert.rejects(c.tryAcquire('x', 1000),
      (e) => e instanceof DlockError && e.code === 'EIO' && e.detail.includes(words));
    await c.close();
  }
});

test('Redlock: three servers, the lock on a majority (then on all), fences rising', T, async () => {
  const s = [await startServer(), await startServer(), await startServer()];
  const rl = new DistributedLock(`redis://${s.map((x) => `127.0.0.1:${x.port}`).join(',')}`);
  const look = s.map((x) => inspector(x));
  try {
    const h = await rl.acquire('x-rl', 5000);
    // The acquire settles once a majority granted it; the third request
    // may still be on its way.
    const holding = async () => (await Promise.all(look.map((r) => r.exists('dlock:{x-rl}')))).reduce((a, b) => a + b);
    assert.ok((await holding()) >= 2);
    await until(async () => (await holding()) === 3, 3000, 'the lock on all three');
    assert.equal(await rl.tryAcquire('x-rl', 1000), null);
    const w = rl.waitForLock('x-rl', 5000, 1000);
    await h.release();
    const h2 = await w;
    assert.ok(h2.fence > h.fence);
    await h2.release();
  } finally {
    for (const r of look) r.disconnect();
    await rl.close();
    await Promise.all(s.map((x) => x.stop()));
  }
});

test('a URL built from ioredis-style options (sentinels, cluster, unix, tls, IPv6)', T, () => {
  const { urlFromClient } = require('..');
  assert.equal(urlFromClient({ options: { host: '::1', port: 7000, username: 'u', password: 'p w', db: 2 } }),
    'redis://u:p%20w@[::1]:7000/2');
  assert.equal(urlFromClient({ options: { host: 'h', port: 6380, tls: {} } }), 'rediss://h:6380');
  assert.equal(urlFromClient({ options: { path: '/run/redis.sock', db: 1 } }), 'unix:///run/redis.sock?db=1');
  assert.equal(urlFromClient({ options: { sentinels: [{ host: 's1', port: 26379 }, { host: 's2' }], name: 'mm' } }),
    'redis-sentinel://s1:26379,s2:26379/mm');
  assert.equal(urlFromClient({ isCluster: true, startupNodes: [{ host: 'n1', port: 7000 }, 'redis://n2:7001'],
    options: { redisOptions: { password: 'pw' } } }), 'redis-cluster://:pw@n1:7000,n2:7001');
});

test('LockAcquisitionError carries the key and the status name', T, async () => {
  const h = await other.acquire('x-err', 5000);
  const e = await dl.waitForLock('x-err', 50, 1000).catch((x) => x);
  assert.ok(e instanceof LockAcquisitionError);
  assert.equal(e.key, 'x-err');
  assert.equal(e.code, 'ETIMEDOUT');
  assert.equal(typeof e.status, 'number');
  await h.release();
});

test('a worker thread ended mid-wait, with a kept-alive lock, tears down cleanly', T, async () => {
  const { Worker } = require('worker_threads');
  const code = `
    const { parentPort, workerData } = require('worker_threads');
    const { DistributedLock } = require(${JSON.stringify(require.resolve('..'))});
    const dl = new DistributedLock(workerData);
    (async () => {
      await dl.acquire('x-worker-kept-' + process.pid + Math.random(), 1000, { autoExtend: 200 });
      dl.waitForLock('x-worker-held', 60000, 1000).catch(() => {});
      parentPort.postMessage('ready');
    })();`;
  const blocker = await other.acquire('x-worker-held', 10000);
  for (let i = 0; i < 3; i++) {
    const w = new Worker(code, { eval: true, workerData: srv.url });
    await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
    await until(async () => (await rc.zcard('dlock:{x-worker-held}:q')) >= 1, 3000, 'the worker queued');
    assert.equal(await w.terminate(), 1);
  }
  await blocker.release();
  // The main thread's clients still work.
  const h = await dl.acquire('x-worker-after', 1000);
  await h.release();
});
