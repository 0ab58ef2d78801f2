'use strict';
// Uncontended acquire+release pairs from Node, one after another on one
// client: the binding's per-call cost on top of two round trips. Compare
// with the C library: build/bench/dlock-bench --mode uncontended.
//   node bench/pairs.js URL [SECONDS=5] [tryAcquire|acquire]
const { DistributedLock } = require('..');

const [url, secs = '5', how = 'tryAcquire'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node bench/pairs.js URL [SECONDS] [tryAcquire|acquire]');
  process.exit(2);
}

(async () => {
  const dl = new DistributedLock(url);
  for (let i = 0; i < 1000; i++) await (await dl[how]('pairs', 10000)).release(); // warm up
  const lat = [];
  const end = Date.now() + Number(secs) * 1000;
  const t0 = process.hrtime.bigint();
  while (Date.now() < end) {
    const a = process.hrtime.bigint();
    const h = await dl[how]('pairs', 10000);
    await h.release();
    lat.push(Number(process.hrtime.bigint() - a) / 1000);
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((x, y) => x - y);
  const p = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))].toFixed(1);
  console.log(`RESULT lang=node how=${how} pairs_per_s=${Math.round(lat.length / s)} p50_us=${p(0.5)} p99_us=${p(0.99)}`);
  await dl.close();
})().catch((e) => { console.error(e); process.exit(1); });
