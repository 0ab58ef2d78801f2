'use strict';
// rediss:// through the addon: libdlock's TLS transport runs on the
// process's own OpenSSL (the addon does not link libssl: NodeSource's node
// exports its OpenSSL, Debian's links the system's), against a redis-server
// with TLS on, certificates made by the repository's tests/tls/mkcerts.sh.
// Then Sentinel and Cluster over TLS, built as tests/tls/tls_env.c builds
// them for the C tests: rediss-sentinel:// (a TLS master and a sentinel
// that talks TLS to it and to clients) and rediss-cluster:// (three masters
// with --tls-cluster yes). Each server keeps a plain port for the test's
// own checks.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { startServer, spawnOn, freePort, inspector, until } = require('./helpers');
const { wokenWaiter } = require('./topology');
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

// ---- Sentinel and Cluster over TLS ----

const caQuery = () => `tls_ca=${encodeURIComponent(path.join(dir, 'ca.crt'))}`;

// A redis-server with a TLS port next to its plain one (server.crt, the
// test CA; no client certificates asked for), plus extra(tlsPort)
// arguments. Returns [server, tlsPort]; a TLS port taken meanwhile is
// tried again with another.
async function tlsServer(extra = () => []) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const tlsPort = await freePort();
    try {
      const s = await startServer(['--tls-port', String(tlsPort),
        '--tls-cert-file', path.join(dir, 'server.crt'), '--tls-key-file', path.join(dir, 'server.key'),
        '--tls-ca-cert-file', path.join(dir, 'ca.crt'), '--tls-auth-clients', 'no', ...extra(tlsPort)]);
      return [s, tlsPort];
    } catch { /* the TLS port was taken: another */ }
  }
  throw new Error('could not start a TLS redis-server');
}

// A TLS master and one sentinel (quorum 1) that monitors it over TLS
// (tls-replication yes) and serves clients on a TLS port too, until the
// sentinel has seen the master (as te_sentinel_start does).
async function startTlsSentinel() {
  const [master, masterTls] = await tlsServer();
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const tlsPort = await freePort();
    const sdir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlock-node-tls-sentinel-'));
    const conf = path.join(sdir, 'sentinel.conf');
    fs.writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', 'daemonize no', `dir "${sdir}"`,
      `tls-port ${tlsPort}`, `tls-cert-file ${path.join(dir, 'server.crt')}`,
      `tls-key-file ${path.join(dir, 'server.key')}`, `tls-ca-cert-file ${path.join(dir, 'ca.crt')}`,
      'tls-auth-clients no', 'tls-replication yes', 'sentinel resolve-hostnames no',
      `sentinel monitor mymaster 127.0.0.1 ${masterTls} 1`,
      'sentinel down-after-milliseconds mymaster 2000', ''].join('\n'));
    const sentinel = await spawnOn(port, sdir, [conf, '--sentinel']);
    if (!sentinel) {
      fs.rmSync(sdir, { recursive: true, force: true });
      continue; // a port was taken: new ports
    }
    const look = inspector(sentinel);
    try {
      await until(async () => {
        const m = await look.call('SENTINEL', 'master', 'mymaster');
        const f = (name) => m[m.indexOf(name) + 1];
        return f('role-reported') === 'master' && f('flags') === 'master';
      }, 10000, 'the sentinel seeing the master over TLS');
    } finally {
      look.disconnect();
    }
    return {
      master,
      url: `rediss-sentinel://127.0.0.1:${tlsPort}/mymaster?${caQuery()}`,
      stop: () => Promise.all([sentinel.stop('SIGKILL'), master.stop('SIGKILL')]),
    };
  }
  await master.stop('SIGKILL');
  throw new Error('could not start the TLS sentinel');
}

// Three masters with --tls-cluster yes (the bus is TLS too), slots split
// evenly with CLUSTER ADDSLOTSRANGE and joined with CLUSTER MEET over the
// plain admin ports (as te_cluster_start does). ownerOf(slot) asks over a
// plain connection, whose CLUSTER SLOTS names the plain ports.
async function startTlsCluster(n = 3) {
  const nodes = [];
  const tls = [];
  const bus = [];
  for (let i = 0; i < n; i++) {
    bus.push(await freePort());
    const [s, t] = await tlsServer(() => ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', '2000', '--tls-cluster', 'yes', '--cluster-port', String(bus[i])]);
    nodes.push(s);
    tls.push(t);
  }
  const looks = nodes.map((s) => inspector(s));
  for (let i = 0; i < n; i++)
    await looks[i].call('CLUSTER', 'ADDSLOTSRANGE', Math.floor(16384 * i / n),
      Math.floor(16384 * (i + 1) / n) - 1);
  for (let i = 1; i < n; i++) await looks[0].call('CLUSTER', 'MEET', '127.0.0.1', tls[i], bus[i]);
  await until(async () => {
    for (const l of looks) {
      const info = await l.call('CLUSTER', 'INFO');
      if (!/cluster_state:ok/.test(info) || !info.includes(`cluster_known_nodes:${n}\r`)) return false;
    }
    return true;
  }, 20000, 'the TLS cluster ok on every node');
  return {
    nodes,
    looks,
    url: `rediss-cluster://${tls.map((p) => `127.0.0.1:${p}`).join(',')}?${caQuery()}`,
    async ownerOf(slot) {
      for (const [lo, hi, [, port]] of await looks[0].call('CLUSTER', 'SLOTS'))
        if (slot >= lo && slot <= hi) return nodes.findIndex((s) => s.port === Number(port));
      return -1;
    },
    async stop() {
      for (const l of looks) l.disconnect();
      await Promise.all(nodes.map((s) => s.stop('SIGKILL')));
    },
  };
}

// A holder, a waiter queued behind it and woken by its release (the
// wake-up subscription over TLS too); look (a plain connection to the
// server that must hold the lock) checks the token there.
async function handOver(url, name, look) {
  const a = new DistributedLock(url, { connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
  const b = new DistributedLock(url, { connectTimeoutMs: 1000, commandTimeoutMs: 1000 });
  try {
    const h = await a.acquire(name, 20000);
    assert.equal(await look.hget(`dlock:{${name}}`, 't'), h.token);
    assert.equal(await b.tryAcquire(name, 5000), null);
    const { hw, ms } = await wokenWaiter(a, b, name, h);
    // Woken by the hand-over: far below the 2 s slice a queued waiter sleeps without it.
    assert.ok(ms < 1000, `woken ${ms.toFixed(0)} ms after the release`);
    assert.ok(hw.fence > h.fence, `fence ${hw.fence} after ${h.fence}`);
    assert.equal(await look.hget(`dlock:{${name}}`, 't'), hw.token);
    await hw.release();
    assert.equal(await look.exists(`dlock:{${name}}`), 0);
  } finally {
    await a.close();
    await b.close();
  }
}

test('rediss-sentinel://: the master found over TLS, a lock handed over there', T, async () => {
  const g = await startTlsSentinel();
  const look = inspector(g.master);
  try {
    await handOver(g.url, 'tls-sn', look);
  } finally {
    look.disconnect();
    await g.stop();
  }
});

test('rediss-cluster://: the slot map over TLS, a lock handed over on each master', T, async () => {
  const k = await startTlsCluster(3);
  try {
    for (let want = 0; want < 3; want++) {
      let name;
      for (let i = 0; ; i++) {
        name = `tls-cl-${want}-${i}`;
        if ((await k.ownerOf(await k.looks[0].call('CLUSTER', 'KEYSLOT', `dlock:{${name}}`))) === want) break;
      }
      await handOver(k.url, name, k.looks[want]);
    }
  } finally {
    await k.stop();
  }
});
