'use strict';
// rediss:// through the addon: libdlock's TLS transport runs on the
// process's own OpenSSL (the addon does not link libssl: NodeSource's node
// exports its OpenSSL, Debian's links the system's), against a redis-server
// with TLS on, certificates made by the repository's tests/tls/mkcerts.sh.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { startServer, freePort } = require('./helpers');
const { DistributedLock, DlockError } = require('..');

const MKCERTS = path.resolve(__dirname, '..', '..', '..', 'tests', 'tls', 'mkcerts.sh');
const T = { timeout: 30000, skip: fs.existsSync(MKCERTS) ? false : `no ${MKCERTS} (not in the repository)` };

let dir, srv, tlsPort;
before(async () => {
  if (T.skip) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlock-node-tls-'));
  execFileSync('sh', [MKCERTS, dir], { stdio: 'ignore' });
  tlsPort = await freePort();
  srv = await startServer(['--tls-port', String(tlsPort), '--tls-cert-file', path.join(dir, 'server.crt'),
    '--tls-key-file', path.join(dir, 'server.key'), '--tls-ca-cert-file', path.join(dir, 'ca.crt'),
    '--tls-auth-clients', 'no']);
});
after(async () => {
  if (srv) await srv.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('rediss:// with the test CA: acquire, exclusion, release', T, async () => {
  const url = `rediss://127.0.0.1:${tlsPort}?tls_ca=${encodeURIComponent(path.join(dir, 'ca.crt'))}`;
  const a = new DistributedLock(url);
  const b = new DistributedLock(srv.url); // the same server in plain TCP
  const h = await a.acquire('tls-1', 5000);
  assert.equal(await b.tryAcquire('tls-1', 5000), null);
  assert.equal((await b.inspect('tls-1')).token, h.token);
  await h.release();
  const g = await b.tryAcquire('tls-1', 5000);
  assert.ok(g !== null && g.fence === h.fence + 1n);
  await g.release();
  await a.close();
  await b.close();
});

test('rediss:// with a CA that did not sign the server: refused, not a hang', T, async () => {
  const url = `rediss://127.0.0.1:${tlsPort}?tls_ca=${encodeURIComponent(path.join(dir, 'other-ca.crt'))}`;
  const c = new DistributedLock(url, { connectTimeoutMs: 1000 });
  const t0 = Date.now();
  await assert.rejects(c.tryAcquire('tls-2', 1000), (e) => e instanceof DlockError && /certificate|verif/i.test(e.detail));
  assert.ok(Date.now() - t0 < 3000);
  await c.close();
});
