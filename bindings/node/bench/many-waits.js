'use strict';
// N concurrent waitForLock calls in one process (issue 13, "Memory"):
// K keys held by another client, N waiters queued behind them (N/K per
// key), then the holders release and every waiter takes and releases its
// lock in turn. Prints RSS and the thread count while they wait, and how
// long the hand-overs took.
//   node bench/many-waits.js URL [N=10000] [K=100]
const fs = require('fs');
const { DistributedLock } = require('..');

const [url, n = '10000', k = '100'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node bench/many-waits.js URL [N] [KEYS]');
  process.exit(2);
}
const N = Number(n);
const K = Number(k);
const threads = () => fs.readdirSync('/proc/self/task').length;
const mb = (b) => (b / 1048576).toFixed(1);

(async () => {
  const holders = new DistributedLock(url);
  const dl = new DistributedLock(url, { commandTimeoutMs: 5000 });
  const held = [];
  for (let i = 0; i < K; i++) held.push(await holders.acquire(`mw-${i}`, 120000));
  global.gc && global.gc();
  const rss0 = process.memoryUsage().rss;
  const th0 = threads();
  let done = 0;
  const t0 = Date.now();
  const waits = Array.from({ length: N }, (_, i) =>
    dl.waitForLock(`mw-${i % K}`, 120000, 10000).then((h) => { done++; return h.release(); }));
  // Let every wait reach the server's queue.
  await new Promise((r) => setTimeout(r, Number(process.env.PAUSE_MS || 2000)));
  global.gc && global.gc();
  const mem = process.memoryUsage();
  const rss1 = mem.rss;
  console.log(`  (JS heap used ${mb(mem.heapUsed)} MB of ${mb(mem.heapTotal)} MB; the rest is native: ` +
    `the engine's operations, buffers and malloc's arenas)`);
  console.log(`${N} waits pending on ${K} keys (queued in ${Date.now() - t0} ms incl. a 2 s pause): ` +
    `RSS ${mb(rss0)} -> ${mb(rss1)} MB (+${((rss1 - rss0) / N).toFixed(0)} B/wait), threads ${th0} -> ${threads()}, granted ${done}`);
  const t1 = Date.now();
  await Promise.all(held.map((h) => h.release()));
  await Promise.all(waits);
  const ms = Date.now() - t1;
  console.log(`all ${N} granted and released in ${ms} ms (${Math.round(N / (ms / 1000))} hand-overs/s); ` +
    `RSS ${mb(process.memoryUsage().rss)} MB, threads ${threads()}`);
  await holders.close();
  await dl.close();
})().catch((e) => { console.error(e); process.exit(1); });
