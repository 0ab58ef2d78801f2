'use strict';
// bench/peers/driver.js - the dlock-bench workloads for a Node peer library.
// Used by redlock.js, semaphore.js, seed.js and dlock-node.js (which hold each
// library's settings):
//
//   node PEER.js --mode contended|uncontended --port P [--workers W]
//                [--seconds D] [--warmup S] [--ttl MS] [--name KEY]
//                [--ports P1,P2,P3]
//
// contended    W worker processes (child_process.fork, one ioredis connection
//              each) take one lock with the library's blocking acquire, do a
//              non-atomic GET/SET increment of a counter under it, release,
//              repeat for D seconds from a common start. Acquisition
//              timestamps (process.hrtime = CLOCK_MONOTONIC, shared by all
//              processes) are merged to count handoffs (an acquisition by a
//              different worker than the previous one); violations =
//              critical sections - counter. An acquire that gives up (the
//              library's retry limit or timeout) is counted as gave_up and
//              the worker simply calls acquire again.
// uncontended  one client, acquire + release pairs on a free lock after S
//              seconds of warm-up: pairs/s and p50/p99 pair latency. With
//              --ports, one connection to each of those servers, all given
//              to the peer (a Redlock set: redlock.js only).
// Last line: RESULT ... in dlock-bench's format, plus gave_up= and errors=.
const { fork } = require('node:child_process');
const Redis = require('ioredis');

const HOST = '127.0.0.1';
const nowNs = () => process.hrtime.bigint();
const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));

function parseArgs(argv) {
  const o = { mode: '', port: 6379, workers: 1, seconds: 5, warmup: 1, ttl: 10000, name: '', ports: '' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (k === 'child') { o.child = true; continue; }
    if (!(k in o) || i + 1 >= argv.length) throw new Error(`bad option ${argv[i]}`);
    o[k] = typeof o[k] === 'number' ? Number(argv[++i]) : argv[++i];
  }
  if (!['contended', 'uncontended'].includes(o.mode) || !(o.workers >= 1) || !(o.seconds > 0))
    throw new Error('usage: --mode contended|uncontended --port P [--workers W] [--seconds D] ' +
                    '[--warmup S] [--ttl MS] [--name KEY] [--ports P1,P2,...]');
  if (o.ports && o.mode !== 'uncontended') throw new Error('--ports: uncontended mode only');
  return o;
}

function quantile(sorted, q) {
  if (sorted.length === 0) return 0;
  return Number(sorted[Math.min(sorted.length - 1, Math.round(q * (sorted.length - 1)))]);
}

function connect(port) {
  // ioredis defaults (no auto-pipelining); retries off so a dead server fails the run.
  return new Redis({ host: HOST, port, maxRetriesPerRequest: 1, lazyConnect: true });
}

// peer = { label, version, make(client, o, clients) -> ctx (clients: every connection,
// with --ports), acquire(ctx) -> handle|null (null: gave up), release(ctx, handle) }
async function child(peer, o) {
  const r = connect(o.port);
  await r.connect();
  const ctx = peer.make(r, o);
  const key = `bench-peer:{${o.name}}:counter`;
  let h;
  while ((h = await peer.acquire(ctx)) === null) { /* warm-up: scripts loaded */ }
  await peer.release(ctx, h);
  const go = await new Promise((resolve) => {
    process.once('message', resolve);
    process.send({ ready: true });
  });
  const start = BigInt(go.start), end = BigInt(go.end);
  const d = start - nowNs();
  if (d > 0n) await sleepMs(Number(d / 1000000n));
  while (nowNs() < start) { /* the last fraction of a millisecond */ }
  const res = { log: [], waits: [], acq_window: 0, acq_total: 0, cs_ok: 0, gave_up: 0, errors: 0 };
  let t = nowNs();
  while (t < end) {
    const t0 = t;
    let lock;
    try {
      lock = await peer.acquire(ctx);
    } catch (e) {
      res.errors++;
      if (res.errors === 1) process.stderr.write(`${peer.label}: acquire: ${e}\n`);
      t = nowNs();
      continue;
    }
    if (lock === null) { res.gave_up++; t = nowNs(); continue; }
    const t1 = nowNs();
    try {
      const v = await r.get(key);
      await r.set(key, Number(v || 0) + 1);
      res.cs_ok++;
    } catch (e) { res.errors++; }
    try { await peer.release(ctx, lock); } catch (e) {
      res.errors++;
      if (res.errors === 1) process.stderr.write(`${peer.label}: release: ${e}\n`);
    }
    res.acq_total++;
    if (t1 < end) res.acq_window++;
    res.log.push((t1).toString());
    res.waits.push(Number(t1 - t0));
    t = nowNs();
  }
  process.send({ res }, () => { r.disconnect(); process.exit(0); });
}

async function contended(peer, o, script) {
  const W = o.workers;
  const r = connect(o.port);
  await r.connect();
  const key = `bench-peer:{${o.name}}:counter`;
  await r.del(key);
  const args = ['--child', '--mode', o.mode, '--port', String(o.port), '--workers', String(W),
                '--seconds', String(o.seconds), '--ttl', String(o.ttl), '--name', o.name];
  const kids = [];
  for (let i = 0; i < W; i++) kids.push(fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const ready = kids.map((k, i) => new Promise((resolve, reject) => {
    k.once('message', resolve);
    k.once('exit', (c) => reject(new Error(`worker ${i} exited (${c}) during set-up`)));
  }));
  await Promise.all(ready);
  const results = kids.map((k, i) => new Promise((resolve, reject) => {
    k.on('message', (m) => { if (m.res) resolve(m.res); });
    k.once('exit', (c) => { if (c !== 0) reject(new Error(`worker ${i} exited (${c})`)); });
  }));
  const start = nowNs() + 20000000n;
  const end = start + BigInt(Math.round(o.seconds * 1e9));
  for (const k of kids) k.send({ start: start.toString(), end: end.toString() });
  const all = await Promise.all(results);
  const actual = Number((await r.get(key)) || 0);
  r.disconnect();

  const merged = [];
  all.forEach((res, wid) => { for (const t of res.log) merged.push([BigInt(t), wid]); });
  merged.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let handoffs = 0;
  for (let i = 1; i < merged.length; i++)
    if (merged[i][1] !== merged[i - 1][1] && merged[i][0] >= start && merged[i][0] < end) handoffs++;
  const waits = all.flatMap((res) => res.waits).sort((a, b) => a - b);
  const secs = Number(end - start) / 1e9;
  const shares = all.map((res) => res.acq_window);
  const acq = shares.reduce((a, b) => a + b, 0);
  const mean = acq / W;
  const sum = (f) => all.reduce((a, res) => a + res[f], 0);
  const csOk = sum('cs_ok'), gaveUp = sum('gave_up'), errors = sum('errors');
  console.log(`${peer.label} ${peer.version} contended: ${W} worker(s), ${secs.toFixed(1)} s, ` +
              `shares [${shares.join(', ')}], gave up ${gaveUp}, errors ${errors}`);
  console.log(`RESULT mode=contended pairs_per_s=0 p50_us=0 p99_us=0 acq_per_s=${(acq / secs).toFixed(1)} ` +
              `handoffs_per_s=${(handoffs / secs).toFixed(1)} ` +
              `min_share=${(mean ? Math.min(...shares) / mean : 0).toFixed(3)} ` +
              `wait_p99_us=${(quantile(waits, 0.99) / 1000).toFixed(1)} cmds_per_acq=-1 ` +
              `violations=${csOk - actual} workers=${W} waiting=${peer.label} ` +
              `gave_up=${gaveUp} errors=${errors}`);
}

async function uncontended(peer, o) {
  const ports = o.ports ? o.ports.split(',').map(Number) : [o.port];
  const all = ports.map(connect);
  await Promise.all(all.map((c) => c.connect()));
  const r = all[0];
  const ctx = peer.make(r, o, all);
  const lat = [];
  let t = nowNs();
  const warmEnd = t + BigInt(Math.round(o.warmup * 1e9));
  const end = warmEnd + BigInt(Math.round(o.seconds * 1e9));
  let gaveUp = 0;
  while (t < end) {
    const t0 = t;
    const h = await peer.acquire(ctx);
    if (h === null) gaveUp++; else await peer.release(ctx, h);
    t = nowNs();
    if (t0 >= warmEnd) lat.push(Number(t - t0));
  }
  for (const c of all) c.disconnect();
  lat.sort((a, b) => a - b);
  const secs = lat.reduce((a, b) => a + b, 0) / 1e9;
  console.log(`${peer.label} ${peer.version} uncontended: ${lat.length} pairs, ${all.length} server(s)`);
  console.log(`RESULT mode=uncontended pairs_per_s=${(secs ? lat.length / secs : 0).toFixed(1)} ` +
              `p50_us=${(quantile(lat, 0.5) / 1000).toFixed(1)} p99_us=${(quantile(lat, 0.99) / 1000).toFixed(1)} ` +
              `acq_per_s=0 handoffs_per_s=0 min_share=0 wait_p99_us=0 cmds_per_acq=-1 violations=0 ` +
              `workers=1 waiting=${peer.label} gave_up=${gaveUp} errors=0`);
}

function main(peer, script) {
  let o;
  try { o = parseArgs(process.argv.slice(2)); } catch (e) { console.error(`${e.message}`); process.exit(2); }
  if (!o.name) o.name = `bench-peer-${peer.label}`;
  const run = o.child ? child(peer, o) : o.mode === 'contended' ? contended(peer, o, script) : uncontended(peer, o);
  run.then(() => { if (!o.child) process.exit(0); }, (e) => { console.error(`${peer.label}: ${e.stack || e}`); process.exit(1); });
}

module.exports = { main };
