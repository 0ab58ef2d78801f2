'use strict';
// The Node client and the dlock tool share one protocol: a lock held by the
// tool blocks the Node client and the other way round, with fences rising
// across both. The tool is the repository's build (tests/bindings passes
// DLOCK_CLI; by default ../../build/cli/dlock, as `make` builds it).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFile, spawn } = require('child_process');
const { startServer, until } = require('./helpers');
const { DistributedLock, LockAcquisitionError } = require('..');

const CLI = process.env.DLOCK_CLI || path.resolve(__dirname, '..', '..', '..', 'build', 'cli', 'dlock');
const haveCli = fs.existsSync(CLI);
const T = { timeout: 30000, skip: haveCli ? false : `no dlock tool at ${CLI} (build it: make, or set DLOCK_CLI)` };

let srv, dl;
before(async () => {
  srv = await startServer();
  dl = new DistributedLock(srv.url, { ownerLabel: 'node-side' });
});
after(async () => {
  await dl.close();
  await srv.stop();
});

function cli(args) {
  return new Promise((resolve) => {
    execFile(CLI, ['--url', srv.url, ...args], { timeout: 15000 }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('a lock held by the tool blocks the Node client until the tool releases it', T, async () => {
  const a = await cli(['acquire', '--ttl', '10000', '-l', 'cli-side', 'io-1']);
  assert.equal(a.code, 0, a.stderr);
  const [token, fence] = a.stdout.trim().split(' ');
  assert.equal(await dl.tryAcquire('io-1', 5000), null);
  assert.equal(await dl.isLocked('io-1'), true);
  const who = await dl.inspect('io-1');
  assert.equal(who.token, token);
  assert.equal(who.label, 'cli-side');
  assert.equal(who.fence, BigInt(fence));
  await assert.rejects(dl.waitForLock('io-1', 200, 5000), LockAcquisitionError);
  const w = dl.waitForLock('io-1', 10000, 5000);
  const r = await cli(['release', 'io-1', token]);
  assert.equal(r.code, 0, r.stderr);
  const h = await w;
  assert.equal(h.fence, BigInt(fence) + 1n);
  await h.release();
});

test('a lock held by the Node client blocks the tool until Node releases it', T, async () => {
  const h = await dl.acquire('io-2', 10000);
  const busy = await cli(['acquire', '-n', 'io-2']);
  assert.equal(busy.code, 1, 'acquire -n must fail while Node holds the lock');
  const st = await cli(['status', 'io-2', '--json']);
  const j = JSON.parse(st.stdout);
  assert.equal(j.locked, true);
  assert.equal(j.pid, process.pid);
  assert.equal(j.label, 'node-side');
  assert.equal(j.token, h.token);
  assert.equal(BigInt(j.fence), h.fence);
  // `dlock run` waits (queued FIFO behind us) and runs once we release.
  const run = spawn(CLI, ['--url', srv.url, 'run', '-w', '10', 'io-2', '--', 'sh', '-c', 'echo "$DLOCK_FENCE"'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  run.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => run.once('exit', resolve));
  await until(async () => (await dl.inspect('io-2')).waiters === 1, 5000, 'the tool queued');
  assert.equal(out, '');
  await h.release();
  assert.equal(await exited, 0);
  assert.equal(BigInt(out.trim()), h.fence + 1n);
  const after = await dl.tryAcquire('io-2', 1000);
  assert.ok(after !== null && after.fence === h.fence + 2n);
  await after.release();
});
