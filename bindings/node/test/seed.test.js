'use strict';
// Every behaviour the seed's document lists as implemented and tested
// (reference/seed-distributed-lock.md), rewritten against this package, on
// a real redis-server.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { startServer, inspector, sleep } = require('./helpers');
const dlock = require('..');

const { DistributedLock, LockHandle, LockAcquisitionError, InvalidLockError } = dlock;
const T = { timeout: 30000 };

let srv, dl, other, rc;
before(async () => {
  srv = await startServer();
  dl = new DistributedLock(srv.url);
  other = new DistributedLock(srv.url); // a second owner, with its own connections
  rc = inspector(srv);
});
after(async () => {
  await dl.close();
  await other.close();
  rc.disconnect();
  await srv.stop();
});

test('the seed exports, with instanceof working on both error classes', T, () => {
  for (const n of ['DistributedLock', 'LockHandle', 'LockAcquisitionError', 'InvalidLockError'])
    assert.equal(typeof dlock[n], 'function', n);
  const a = new LockAcquisitionError('x');
  const b = new InvalidLockError('y');
  assert.ok(a instanceof LockAcquisitionError && a instanceof Error && !(a instanceof InvalidLockError));
  assert.ok(b instanceof InvalidLockError && b instanceof Error && !(b instanceof LockAcquisitionError));
  assert.equal(a.name, 'LockAcquisitionError');
  assert.equal(b.name, 'InvalidLockError');
  assert.equal(a.message, 'x');
});

test('ESM import gives the same classes', T, async () => {
  const m = await import('../index.mjs');
  assert.equal(m.DistributedLock, DistributedLock);
  assert.equal(m.InvalidLockError, InvalidLockError);
});

test('acquire: a LockHandle with a unique token, the key set with the TTL', T, async () => {
  const h = await dl.acquire('seed-acq', 5000);
  assert.ok(h instanceof LockHandle);
  assert.match(h.info.token, /^[0-9a-f]{32}$/);
  assert.equal(h.info.key, 'seed-acq');
  const pttl = await rc.pttl('dlock:{seed-acq}');
  assert.ok(pttl > 4000 && pttl <= 5000, `pttl ${pttl}`);
  await h.release();
  const h2 = await dl.acquire('seed-acq', 5000);
  assert.notEqual(h2.token, h.token);
  await h2.release();
});

test('acquire is atomic: of 20 concurrent tryAcquire calls exactly one wins', T, async () => {
  const clients = [dl, other];
  const got = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    clients[i % 2].tryAcquire('seed-atomic', 5000)));
  const winners = got.filter((h) => h !== null);
  assert.equal(winners.length, 1);
  await winners[0].release();
});

test('acquire retries with exponential backoff, then LockAcquisitionError', T, async () => {
  const quick = new DistributedLock(srv.url, { retryCount: 3, retryDelayMs: 50, retryJitterPct: 0 });
  const h = await other.acquire('seed-retry', 10000);
  const t0 = Date.now();
  await assert.rejects(quick.acquire('seed-retry', 1000), (e) => {
    assert.ok(e instanceof LockAcquisitionError);
    assert.equal(e.code, 'EBUSY');
    assert.equal(e.key, 'seed-retry');
    return true;
  });
  const ms = Date.now() - t0;
  // 50 + 100 + 200 ms of backoff between the four attempts.
  assert.ok(ms >= 330 && ms < 2000, `gave up after ${ms} ms`);
  await h.release();
  await quick.close();
});

test('acquire: the seed option names (retryAttempts / maxRetries) are accepted', T, async () => {
  const a = new DistributedLock(srv.url, { retryAttempts: 0 });
  const b = new DistributedLock(srv.url, { maxRetries: 0 });
  assert.equal(a.options.retryCount, 0);
  assert.equal(b.options.retryCount, 0);
  assert.equal(new DistributedLock(srv.url).options.retryDelayMs, 100);
  const h = await other.acquire('seed-alias', 10000);
  await assert.rejects(a.acquire('seed-alias', 1000), LockAcquisitionError);
  await h.release();
  await a.close();
  await b.close();
});

test('acquire succeeds when the holder releases during the retries', T, async () => {
  const h = await other.acquire('seed-retry-ok', 10000);
  setTimeout(() => h.release(), 150);
  const t0 = Date.now();
  const h2 = await dl.acquire('seed-retry-ok', 5000);
  assert.ok(Date.now() - t0 < 1000);
  assert.ok(h2.isHeld);
  await h2.release();
});

test('tryAcquire: a handle when free, null at once when held (one attempt)', T, async () => {
  const h = await dl.tryAcquire('seed-try', 5000);
  assert.ok(h instanceof LockHandle);
  const t0 = Date.now();
  assert.equal(await other.tryAcquire('seed-try', 5000), null);
  assert.ok(Date.now() - t0 < 500);
  await h.release();
  const h2 = await other.tryAcquire('seed-try', 5000);
  assert.ok(h2 !== null);
  await h2.release();
});

test('waitForLock: acquires once released, before the deadline', T, async () => {
  const h = await other.acquire('seed-wait', 10000);
  setTimeout(() => h.release(), 200);
  const t0 = Date.now();
  const h2 = await dl.waitForLock('seed-wait', 5000, 5000);
  const ms = Date.now() - t0;
  assert.ok(ms >= 150 && ms < 1500, `waited ${ms} ms`);
  await h2.release();
});

test('waitForLock: LockAcquisitionError once the timeout passes, not much later', T, async () => {
  const h = await other.acquire('seed-wait-to', 10000);
  const t0 = Date.now();
  await assert.rejects(dl.waitForLock('seed-wait-to', 300, 5000), (e) => {
    assert.ok(e instanceof LockAcquisitionError);
    assert.equal(e.code, 'ETIMEDOUT');
    return true;
  });
  const ms = Date.now() - t0;
  // The deadline plus at most one command timeout (1 s).
  assert.ok(ms >= 290 && ms < 1400, `gave up after ${ms} ms`);
  await h.release();
});

test('isLocked: true while held, false when free, after release and after expiry', T, async () => {
  assert.equal(await dl.isLocked('seed-is'), false); // PTTL -2
  const h = await other.acquire('seed-is', 300);
  assert.equal(await dl.isLocked('seed-is'), true); // PTTL > 0
  await sleep(400);
  assert.equal(await dl.isLocked('seed-is'), false); // expired
  const h2 = await other.acquire('seed-is', 5000);
  await h2.release();
  assert.equal(await dl.isLocked('seed-is'), false);
  await assert.rejects(h.release(), InvalidLockError);
});

test('isLocked: a lock key without expiry (PTTL -1) counts as locked', T, async () => {
  await rc.hset('dlock:{seed-noexp}', 't', 'f'.repeat(32));
  assert.equal(await dl.isLocked('seed-noexp'), true);
  await rc.del('dlock:{seed-noexp}');
});

test('release: deletes the key and marks the handle released', T, async () => {
  const h = await dl.acquire('seed-rel', 5000);
  assert.equal(await rc.exists('dlock:{seed-rel}'), 1);
  await h.release();
  assert.equal(await rc.exists('dlock:{seed-rel}'), 0);
  assert.equal(h.isHeld, false);
  assert.equal(h.info.isHeld, false);
});

test('release twice: InvalidLockError, without a server call', T, async () => {
  const h = await dl.acquire('seed-rel2', 5000);
  await h.release();
  await assert.rejects(h.release(), InvalidLockError);
});

test("release never deletes someone else's lock (token mismatch)", T, async () => {
  const h = await dl.acquire('seed-rel3', 200);
  await sleep(300); // expired: another owner takes it
  const h2 = await other.acquire('seed-rel3', 5000);
  await assert.rejects(h.release(), (e) => e instanceof InvalidLockError && e.code === 'ENOTHELD');
  assert.equal(await rc.exists('dlock:{seed-rel3}'), 1);
  assert.equal(await rc.hget('dlock:{seed-rel3}', 't'), h2.token);
  await h2.release();
});

test('extend: sets the remaining lease and updates expiresAt', T, async () => {
  const h = await dl.acquire('seed-ext', 1000);
  const before = h.info.expiresAt;
  await h.extend(10000);
  const pttl = await rc.pttl('dlock:{seed-ext}');
  assert.ok(pttl > 9000 && pttl <= 10000, `pttl ${pttl}`);
  assert.ok(h.info.expiresAt > before + 8000);
  assert.ok(h.info.expiresAt <= Date.now() + 10000);
  await h.release();
});

test('extend: a duration that is not positive is refused', T, async () => {
  const h = await dl.acquire('seed-ext-bad', 5000);
  await assert.rejects(h.extend(0), RangeError);
  await assert.rejects(h.extend(-5), RangeError);
  await assert.rejects(h.extend('10'), TypeError);
  await h.release();
});

test('extend: InvalidLockError once the lock is not held (released or expired)', T, async () => {
  const h = await dl.acquire('seed-ext-gone', 200);
  await sleep(300);
  await assert.rejects(h.extend(1000), InvalidLockError);
  assert.equal(await rc.exists('dlock:{seed-ext-gone}'), 0); // not re-created
  const h2 = await dl.acquire('seed-ext-gone2', 5000);
  await h2.release();
  await assert.rejects(h2.extend(1000), InvalidLockError);
});

test('isHeld is local (no server call) and turns false when the lease runs out', T, async () => {
  const h = await dl.acquire('seed-held', 300);
  assert.equal(h.isHeld, true);
  await rc.del('dlock:{seed-held}'); // the server forgot: the local state cannot know
  assert.equal(h.isHeld, true);
  await sleep(350);
  assert.equal(h.isHeld, false);
});

test('info: key, token, acquiredAt, expiresAt, isHeld', T, async () => {
  const t0 = Date.now();
  const h = await dl.acquire('seed-info', 5000);
  const i = h.info;
  for (const k of ['key', 'token', 'acquiredAt', 'expiresAt', 'isHeld'])
    assert.ok(k in i, k);
  assert.equal(i.key, 'seed-info');
  assert.equal(i.isHeld, true);
  assert.ok(i.acquiredAt >= t0 - 5 && i.acquiredAt <= Date.now() + 5);
  // Local validity: the TTL less the drift allowance (1 % + 2 ms).
  assert.ok(i.expiresAt > i.acquiredAt + 4800 && i.expiresAt <= i.acquiredAt + 5000);
  await h.release();
  assert.equal(h.info.isHeld, false);
  assert.equal(h.info.token, i.token);
});

test('markAsReleased (the seed internal): forgets the lock locally', T, async () => {
  const h = await dl.acquire('seed-mark', 300);
  h.markAsReleased();
  assert.equal(h.isHeld, false);
  await assert.rejects(h.release(), InvalidLockError);
});

test('locks expire by their TTL (a dead holder does not block forever)', T, async () => {
  await other.acquire('seed-expire', 200); // never released
  assert.equal(await dl.tryAcquire('seed-expire', 5000), null);
  await sleep(300);
  const h = await dl.tryAcquire('seed-expire', 5000);
  assert.ok(h !== null);
  await h.release();
});

test('constructor: an ioredis client (host, port, db, password read from .options)', T, async () => {
  const pw = await startServer(['--requirepass', 'p@ss:w/rd?']);
  const io = new Redis({ host: '127.0.0.1', port: pw.port, db: 3, password: 'p@ss:w/rd?', lazyConnect: true });
  const byClient = new DistributedLock(io);
  const h = await byClient.acquire('seed-io', 5000);
  const look = inspector(pw, { password: 'p@ss:w/rd?', db: 3 });
  assert.equal(await look.exists('dlock:{seed-io}'), 1);
  await h.release();
  await byClient.close();
  look.disconnect();
  io.disconnect();
  await pw.stop();
});

test('constructor: a wrong password surfaces as an error, not a hang', T, async () => {
  const pw = await startServer(['--requirepass', 'right']);
  const bad = new DistributedLock(new Redis({ port: pw.port, password: 'wrong', lazyConnect: true }));
  const t0 = Date.now();
  await assert.rejects(bad.acquire('seed-pw', 1000), (e) => e instanceof dlock.DlockError &&
    e.code === 'ESERVER' && /WRONGPASS/.test(e.detail) && !e.message.includes('wrong'));
  assert.ok(Date.now() - t0 < 3000);
  await bad.close();
  await pw.stop();
});
