'use strict';
// Waiting costs no thread: 100 concurrent waitForLock calls on 10 keys, all
// blocked behind holders, while fs calls (which need the libuv threadpool,
// 4 threads by default) still complete at once; then the holders release
// and every waiter gets its turn, FIFO per key, one holder at a time.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fsp = require('fs/promises');
const { startServer, inspector, until, threadCount } = require('./helpers');
const { DistributedLock } = require('..');

const KEYS = 10;
const PER_KEY = 10;

let srv, rc;
before(async () => {
  srv = await startServer();
  rc = inspector(srv);
});
after(async () => {
  rc.disconnect();
  await srv.stop();
});

// fs.promises.readFile runs on the threadpool: time n of them, 8 at once.
async function fsLatencies(rounds) {
  const times = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: 8 }, () => fsp.readFile(__filename)));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return times;
}

test('100 waits on 10 keys: no thread each, fs stays quick, FIFO hand-over', { timeout: 60000 }, async () => {
  const holders = new DistributedLock(srv.url);
  const dl = new DistributedLock(srv.url);
  const held = [];
  for (let k = 0; k < KEYS; k++) held.push(await holders.acquire(`c-${k}`, 20000));
  await fsLatencies(2); // warm the threadpool up: its threads start on first use
  const threadsBefore = threadCount();

  const active = new Array(KEYS).fill(0);
  const order = Array.from({ length: KEYS }, () => []);
  const lastFence = new Array(KEYS).fill(0n);
  let overlaps = 0;
  const waits = [];
  for (let seq = 0; seq < PER_KEY; seq++) {
    for (let k = 0; k < KEYS; k++) {
      waits.push(dl.waitForLock(`c-${k}`, 20000, 5000).then(async (h) => {
        if (active[k]++ !== 0) overlaps++;
        order[k].push(seq);
        assert.ok(h.fence > lastFence[k]);
        lastFence[k] = h.fence;
        await fsp.readFile(__filename); // a little work under the lock
        active[k]--;
        await h.release();
      }));
    }
  }
  // Every waiter is queued on the server, and none is granted yet.
  await until(async () => {
    const n = await Promise.all(Array.from({ length: KEYS }, (_, k) => rc.zcard(`dlock:{c-${k}}:q`)));
    return n.every((x) => x === PER_KEY);
  }, 5000, 'all 100 waiters queued');
  assert.equal(threadCount(), threadsBefore, 'a thread per wait?');

  const lat = await Promise.race([
    fsLatencies(10),
    new Promise((_, rej) => setTimeout(() => rej(new Error('fs stalled: the threadpool is busy')), 5000)),
  ]);
  const worst = Math.max(...lat);
  console.log(`fs: 8 concurrent readFile calls during 100 blocked waits: worst ${worst.toFixed(2)} ms, ` +
    `median ${lat.sort((a, b) => a - b)[5].toFixed(2)} ms; threads ${threadsBefore} -> ${threadCount()}`);
  assert.ok(worst < 250, `fs took ${worst} ms`);

  const t0 = Date.now();
  await Promise.all(held.map((h) => h.release()));
  await Promise.all(waits);
  const ms = Date.now() - t0;
  console.log(`100 waits on 10 keys handed over and released in ${ms} ms`);
  assert.equal(overlaps, 0);
  for (let k = 0; k < KEYS; k++)
    assert.deepEqual(order[k], Array.from({ length: PER_KEY }, (_, i) => i), `FIFO on c-${k}`);
  assert.ok(ms < 10000);
  for (let k = 0; k < KEYS; k++) assert.equal(await rc.zcard(`dlock:{c-${k}}:q`), 0);
  assert.equal(threadCount(), threadsBefore);
  // Nothing left behind in the addon: no C handle, no op, no strong reference.
  assert.deepEqual({ ...dl[Symbol.for('dlock.stats')]() }, { locks: 0, inflight: 0, active: 0 });
  await holders.close();
  await dl.close();
});

test('an idle client does not keep the process alive; a waiting one does', { timeout: 30000 }, async () => {
  const { spawnSync } = require('child_process');
  const script = `
    const { DistributedLock } = require(${JSON.stringify(require.resolve('..'))});
    const dl = new DistributedLock(${JSON.stringify(srv.url)});
    (async () => {
      const h = await dl.acquire('c-idle', 300);
      const w = new DistributedLock(${JSON.stringify(srv.url)});
      const t0 = Date.now();
      const h2 = await w.waitForLock('c-idle', 5000, 1000); // only the wait keeps us running
      console.log('waited', Date.now() - t0 >= 250 ? 'until the expiry' : 'too little');
      await h2.release();
      // no close(): nothing is in flight, so the process ends by itself
    })();`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /waited until the expiry/);
  assert.ok(Date.now() - t0 < 5000);
});

test('handles dropped without release are freed by the GC (no crash, no leak of C handles)', { timeout: 30000 }, async () => {
  const { spawnSync } = require('child_process');
  const script = `
    const { DistributedLock } = require(${JSON.stringify(require.resolve('..'))});
    const dl = new DistributedLock(${JSON.stringify(srv.url)});
    const stats = () => dl[Symbol.for('dlock.stats')]();
    (async () => {
      let kept = await dl.acquire('gc-kept', 2000);
      for (let round = 0; round < 5; round++) {
        await Promise.all(Array.from({ length: 200 }, (_, i) => dl.acquire('gc-' + round + '-' + i, 2000)));
        if (stats().locks < 200) throw new Error('C handles freed while reachable');
        for (let i = 0; i < 20 && stats().locks > 1; i++) {
          global.gc();
          await new Promise((r) => setImmediate(r)); // finalizers may be deferred
        }
        if (stats().locks !== 1) throw new Error('C handles left after GC: ' + stats().locks);
      }
      await kept.release();
      if (stats().locks !== 0) throw new Error('released handle not freed');
      await dl.close();
      console.log('ok', JSON.stringify(stats()));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ok /);
  assert.match(r.stdout, /"locks":0,"inflight":0,"active":0/);
});
