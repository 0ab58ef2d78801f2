'use strict';
// Real deployments for the topology tests (redlock, sentinel and cluster
// .test.js), built as tests/topology/topo.c builds them for the C tests:
// every process a redis-server on a free 127.0.0.1 port in a private
// directory, stopped by its PID (helpers.js). Plus the checks every
// deployment must pass, registered as node:test tests by lockTests().
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startServer, spawnOn, freePort, inspector, until, sleep } = require('./helpers');
const { DistributedLock, InvalidLockError } = require('..');

const MASTER_NAME = 'mymaster';
/** The fence's failover epoch starts at this bit (DL_EPOCH_SHIFT, docs/FAILOVER.md). */
const EPOCH_SHIFT = 40n;

/** A Redlock set: n independent masters, one URL naming them all. */
async function startRedlock(n = 3) {
  const servers = [];
  for (let i = 0; i < n; i++) servers.push(await startServer());
  return {
    servers,
    url: `redis://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    stop: () => Promise.all(servers.map((s) => s.stop())),
  };
}

// Until the master has n replicas acknowledging its writes (WAIT counts
// the acknowledgements of this connection's writes).
async function replicasAck(look, n, ms) {
  await until(async () => {
    await look.set('topo-sync', '1');
    return (await look.call('WAIT', n, 200)) >= n;
  }, ms, `${n} replica(s) acknowledging writes`);
}

/** Field `name` of a flat [field, value, ...] reply. */
function field(flat, name) {
  const i = flat.indexOf(name);
  return i >= 0 && i % 2 === 0 ? flat[i + 1] : undefined;
}

// The sentinels, told about each other and the replica up front (as a
// sentinel would have rewritten its own config: no waiting for hello
// messages), down-after 1 s and failover-timeout 3 s as the C tests use.
async function startSentinelProcs(master, replica, n) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const ports = [];
    for (let i = 0; i < n; i++) ports.push(await freePort());
    const ids = ports.map(() => crypto.randomBytes(20).toString('hex'));
    const procs = [];
    for (let i = 0; i < n; i++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlock-node-sentinel-'));
      const conf = path.join(dir, 'sentinel.conf');
      const lines = [`port ${ports[i]}`, 'bind 127.0.0.1', 'daemonize no', `dir "${dir}"`,
        `sentinel myid ${ids[i]}`, 'sentinel resolve-hostnames no',
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 3000`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
        `sentinel known-replica ${MASTER_NAME} 127.0.0.1 ${replica.port}`];
      for (let j = 0; j < n; j++)
        if (j !== i) lines.push(`sentinel known-sentinel ${MASTER_NAME} 127.0.0.1 ${ports[j]} ${ids[j]}`);
      fs.writeFileSync(conf, `${lines.join('\n')}\n`);
      const s = await spawnOn(ports[i], dir, [conf, '--sentinel']);
      if (!s) {
        fs.rmSync(dir, { recursive: true, force: true });
        break;
      }
      procs.push(s);
    }
    if (procs.length === n) return procs;
    await Promise.all(procs.map((s) => s.stop('SIGKILL'))); // a port was taken: new ports
  }
  throw new Error('could not start the sentinels');
}

/**
 * A Sentinel deployment: a master, one replica in sync, and nsent
 * sentinels that know both and each other. Returns { master, replica,
 * sentinels, url, masterPort(i), waitMaster(port, ms), stop() }.
 */
async function startSentinels(nsent = 3) {
  // Full syncs without the default 5 s wait for more replicas.
  const repl = ['--repl-diskless-sync-delay', '0'];
  const master = await startServer(repl);
  const replica = await startServer([...repl, '--replicaof', '127.0.0.1', String(master.port)]);
  const lookM = inspector(master);
  const lookR = inspector(replica);
  try {
    await until(async () => /master_link_status:up/.test(await lookR.info('replication')), 10000,
      'the replica in sync');
    await replicasAck(lookM, 1, 10000);
  } finally {
    lookM.disconnect();
    lookR.disconnect();
  }
  const sentinels = await startSentinelProcs(master, replica, nsent);
  const looks = sentinels.map((s) => inspector(s));
  const g = {
    master,
    replica,
    sentinels,
    url: `redis-sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${MASTER_NAME}`,
    /** The master's port as sentinel i names it. */
    async masterPort(i) {
      const a = await looks[i].call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME);
      return a ? Number(a[1]) : -1;
    },
    /** The master's config-epoch as sentinel i reports it. */
    async configEpoch(i) {
      return Number(field(await looks[i].call('SENTINEL', 'master', MASTER_NAME), 'config-epoch'));
    },
    /** Until every sentinel names port as the master and it says ROLE master. */
    async waitMaster(port, ms) {
      const look = inspector({ port });
      try {
        await until(async () => {
          for (let i = 0; i < nsent; i++) if ((await g.masterPort(i)) !== port) return false;
          return (await look.call('ROLE'))[0] === 'master';
        }, ms, `the sentinels naming 127.0.0.1:${port} master`);
      } finally {
        look.disconnect();
      }
    },
    async stop() {
      for (const l of looks) l.disconnect();
      await Promise.all([...sentinels, replica, master].map((s) => s.stop('SIGKILL')));
    },
  };
  // Every sentinel has the replica and the other sentinels on its books.
  await until(async () => {
    for (const l of looks) {
      const m = await l.call('SENTINEL', 'master', MASTER_NAME);
      if (Number(field(m, 'num-slaves')) < 1 || Number(field(m, 'num-other-sentinels')) !== nsent - 1)
        return false;
    }
    return true;
  }, 20000, 'the sentinels discovering each other');
  return g;
}

/**
 * A Redis Cluster of n masters with `replicas` replicas each (n counts the
 * masters; as tt_cluster_start_replicated does): `redis-cli --cluster
 * create`, then until every node says cluster_state:ok, maps every slot and
 * knows every replica as one (gossip: until then the masters refuse a
 * replica's failover their vote), and every replica is in sync. Returns { nodes, looks, url, slotOf(key),
 * ownerOf(slot), replicaOf(i), stop() }; ownerOf and replicaOf give indexes
 * into nodes.
 */
async function startCluster(n = 3, replicas = 0) {
  const nodes = [];
  for (let i = 0; i < n * (1 + replicas); i++)
    nodes.push(await startServer(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', '2000', '--repl-diskless-sync-delay', '0']));
  const looks = nodes.map((s) => inspector(s));
  await new Promise((resolve, reject) => {
    execFile('redis-cli', ['--cluster', 'create', ...nodes.map((s) => `127.0.0.1:${s.port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30000, killSignal: 'SIGKILL' },
    (err, stdout, stderr) => (err ? reject(new Error(`redis-cli --cluster create: ${err.message}\n${stdout}${stderr}`)) : resolve()));
  });
  const k = {
    nodes,
    looks,
    url: `redis-cluster://${nodes.map((s) => `127.0.0.1:${s.port}`).join(',')}`,
    slotOf: (key) => looks[0].call('CLUSTER', 'KEYSLOT', key),
    /** Index of the node that serves slot, by node i's CLUSTER SLOTS. */
    async ownerOf(slot, i = 0) {
      for (const [lo, hi, [, port]] of await looks[i].call('CLUSTER', 'SLOTS'))
        if (slot >= lo && slot <= hi) return nodes.findIndex((s) => s.port === Number(port));
      return -1;
    },
    /** Index of a replica of node i whose link to it is up, or -1. */
    async replicaOf(i) {
      for (let j = 0; j < nodes.length; j++) {
        const info = await looks[j].info('replication');
        if (info.includes(`master_port:${nodes[i].port}\r`) && /master_link_status:up/.test(info)) return j;
      }
      return -1;
    },
    async stop() {
      for (const l of looks) l.disconnect();
      await Promise.all(nodes.map((s) => s.stop('SIGKILL')));
    },
  };
  await until(async () => {
    for (let i = 0; i < nodes.length; i++) {
      if (!/cluster_state:ok/.test(await looks[i].call('CLUSTER', 'INFO'))) return false;
      let covered = 0;
      for (const [lo, hi] of await looks[i].call('CLUSTER', 'SLOTS')) covered += hi - lo + 1;
      if (covered !== 16384) return false;
      const known = (await looks[i].call('CLUSTER', 'NODES')).split('\n')
        .filter((l) => /[ ,](slave|replica)[ ,]/.test(l)).length;
      if (known !== n * replicas) return false;
    }
    return true;
  }, 20000, 'the cluster ok on every node');
  if (replicas > 0) {
    // Every master has its replicas acknowledging writes (in its own
    // slots: a key of another node's slot is refused with MOVED).
    for (let i = 0; i < nodes.length; i++) {
      const mine = (await looks[i].call('CLUSTER', 'SLOTS'))
        .find(([, , [, port]]) => Number(port) === nodes[i].port);
      if (!mine) continue; // a replica
      let key;
      for (let tag = 0; ; tag++) {
        key = `{s${tag}}topo-sync`;
        const slot = await looks[i].call('CLUSTER', 'KEYSLOT', key);
        if (slot >= mine[0] && slot <= mine[1]) break;
      }
      await until(async () => {
        await looks[i].set(key, '1');
        return (await looks[i].call('WAIT', replicas, 200)) >= replicas;
      }, 10000, `the replicas of node ${i} acknowledging writes`);
    }
  }
  return k;
}

/** Calls of cmd on a server, from INFO commandstats (0 if none). */
async function cmdCalls(look, cmd) {
  const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await look.info('commandstats'));
  return m ? Number(m[1]) : 0;
}

/**
 * Acquire name on dl kept alive by automatic extension (every ttl/3, or
 * every `autoExtend` ms), recording what it reports: { h, lost, events },
 * lost getting { err, handle, at } per onLost call (at: performance.now())
 * and events the error of each 'lost' event.
 */
async function keptAlive(dl, name, ttlMs, autoExtend = true) {
  const lost = [];
  const events = [];
  const h = await dl.acquire(name, ttlMs, {
    autoExtend,
    onLost: (err, handle) => lost.push({ err, handle, at: performance.now() }),
  });
  h.on('lost', (err) => events.push(err));
  return { h, lost, events };
}

/**
 * A healthy kept-alive lock (keptAlive's k): over ms (make it more than
 * the ttl: several keepalive periods) nothing reports a loss and the handle
 * stays held; then each of leases() (the lease left on a server, PTTL)
 * must be positive, which after more than a ttl shows the renewals arrived.
 */
async function staysHeld(k, ms, leases) {
  await sleep(ms); // watching for a loss that must not come, not waiting for an event
  assert.equal(k.lost.length, 0, `onLost called on a healthy lock: ${k.lost.map((l) => l.err.detail)}`);
  assert.equal(k.events.length, 0);
  assert.equal(k.h.isHeld, true);
  for (const pttl of await leases())
    assert.ok(pttl > 0, `lease on the server ${pttl} ms after ${ms} ms kept alive`);
}

/**
 * The kept-alive lock (keptAlive's k) is found lost within ms of t0
 * (performance.now()): onLost once with an InvalidLockError (of code, when
 * given) and the handle, the 'lost' event with the same error; the handle
 * then is not held. Returns how long it took. (What its release answers
 * depends on the deployment: the caller checks it.)
 */
async function becomesLost(k, t0, ms, code) {
  await until(() => k.lost.length >= 1 && k.events.length >= 1, ms, 'onLost and the lost event');
  const took = k.lost[0].at - t0;
  const { err, handle } = k.lost[0];
  assert.ok(err instanceof InvalidLockError, `onLost got ${err}`);
  if (code) assert.equal(err.code, code, err.detail);
  assert.equal(handle, k.h);
  assert.equal(k.events[0], err);
  assert.equal(k.h.isHeld, false);
  assert.equal(k.h.info.isHeld, false);
  await sleep(50); // room for a second call, which must not come
  assert.equal(k.lost.length, 1);
  return took;
}

/**
 * The checks every deployment must pass, as node:test tests: ctx.url is
 * read when they run (set it in before()). A waiter must get the lock
 * within ctx.wakeMs of the release beginning in most of three rounds (the
 * wake-up: without it a queued waiter re-attempts only after its slice,
 * 250 ms on Redlock, 2 s else) and within ctx.wakeMaxMs in every round.
 * Lock names start with `prefix`.
 */
function lockTests(ctx, prefix, T) {
  const fences = []; // every fence issued in these tests, in order, per name
  const client = (o) => {
    const c = new DistributedLock(ctx.url, { ownerLabel: `${prefix}-test`, ...o });
    ctx.clients.push(c);
    return c;
  };
  ctx.clients = [];

  test(`${prefix}: acquire and release`, T, async () => {
    const dl = client();
    const h = await dl.acquire(`${prefix}-ar`, 5000);
    assert.ok(h.isHeld);
    assert.match(h.token, /^[0-9a-f]{32}$/);
    assert.ok(h.fence > 0n);
    assert.equal(await dl.isLocked(`${prefix}-ar`), true);
    await h.release();
    assert.equal(h.isHeld, false);
    assert.equal(await dl.isLocked(`${prefix}-ar`), false);
    await assert.rejects(h.release(), InvalidLockError);
  });

  test(`${prefix}: tryAcquire on a held lock resolves to null`, T, async () => {
    const a = client();
    const b = client();
    const h = await a.acquire(`${prefix}-try`, 5000);
    assert.equal(await b.tryAcquire(`${prefix}-try`, 5000), null);
    await h.release();
    const h2 = await b.tryAcquire(`${prefix}-try`, 5000);
    assert.ok(h2 !== null && h2.fence > h.fence, `${h2 && h2.fence} after ${h.fence}`);
    await h2.release();
  });

  test(`${prefix}: waitForLock is woken by the release (push), not by polling`, T, async (t) => {
    const a = client();
    const b = client();
    const name = `${prefix}-wait`;
    const took = [];
    for (let round = 0; round < 3; round++) {
      // The lease (20 s) and the wait (10 s) are long: only the hand-over
      // can end the wait soon after the release.
      const h = await a.acquire(name, 20000);
      const { hw, ms } = await wokenWaiter(a, b, name, h);
      took.push(ms);
      t.diagnostic(`round ${round}: woken ${ms.toFixed(1)} ms after the release began`);
      assert.ok(ms < ctx.wakeMaxMs, `the waiter got the lock ${ms.toFixed(1)} ms after the release`);
      assert.ok(hw.fence > h.fence, `handed-over fence ${hw.fence} after ${h.fence}`);
      await hw.release();
    }
    const median = took.sort((x, y) => x - y)[1];
    assert.ok(median < ctx.wakeMs, `woken ${took.map((x) => x.toFixed(1)).join(', ')} ms after the releases`);
  });

  test(`${prefix}: extend sets the remaining lease`, T, async () => {
    const dl = client();
    const h = await dl.acquire(`${prefix}-ext`, 1500);
    await h.extend(20000);
    const info = await dl.inspect(`${prefix}-ext`);
    assert.ok(info.pttl > 15000 && info.pttl <= 20000, `pttl ${info.pttl}`);
    assert.ok(h.info.expiresAt > Date.now() + 15000);
    await h.release();
    await assert.rejects(h.extend(1000), InvalidLockError);
  });

  test(`${prefix}: fences rise strictly across acquisitions and clients`, T, async () => {
    const cs = [client(), client()];
    const name = `${prefix}-fence`;
    for (let i = 0; i < 6; i++) {
      const h = await cs[i % 2].acquire(name, 5000);
      fences.push(h.fence);
      await h.release();
    }
    for (let i = 1; i < fences.length; i++)
      assert.ok(fences[i] > fences[i - 1], `fence ${fences[i]} after ${fences[i - 1]}`);
  });

  test(`${prefix}: inspect shows the holder, then a free lock`, T, async () => {
    const dl = client({ ownerLabel: `${prefix}-inspect` });
    const name = `${prefix}-insp`;
    const h = await dl.acquire(name, 8000);
    const i = await dl.inspect(name);
    assert.equal(i.locked, true);
    assert.equal(i.token, h.token);
    assert.equal(i.fence, h.fence);
    assert.equal(i.label, `${prefix}-inspect`);
    assert.equal(i.pid, process.pid);
    assert.ok(i.pttl > 6000 && i.pttl <= 8000, `pttl ${i.pttl}`);
    assert.equal(i.waiters, 0);
    await h.release();
    const f = await dl.inspect(name);
    assert.equal(f.locked, false);
    assert.equal(f.pttl, -1);
    assert.equal(f.fence, h.fence); // the last one issued
  });
}

/** Close what lockTests opened. */
function closeClients(ctx) {
  return Promise.all((ctx.clients || []).map((c) => c.close()));
}

// b waits for name (10 s, ttl 5 s) behind a's handle h, which is released
// once b is queued: b's handle and the ms from the release to the grant.
async function wokenWaiter(a, b, name, h) {
  const w = b.waitForLock(name, 10000, 5000);
  w.catch(() => {}); // awaited below; not unhandled if a check fails first
  await until(async () => (await a.inspect(name)).waiters >= 1, 5000, 'the waiter queued');
  const t0 = performance.now();
  await h.release();
  const hw = await w;
  return { hw, ms: performance.now() - t0 };
}

module.exports = {
  wokenWaiter,
  startRedlock, startSentinels, startCluster, replicasAck, cmdCalls, lockTests, closeClients,
  keptAlive, staysHeld, becomesLost, EPOCH_SHIFT,
};
