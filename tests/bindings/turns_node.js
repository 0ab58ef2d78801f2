'use strict';
// The Node binding's participant in the cross-implementation test
// (tests/bindings/turns.py): ROUNDS times, waitForLock(NAME), check and hold
// the in-Redis marker for HOLD_MS, release, and append one record per round
// to OUT:
//
//     node <round> <fence> <t0_ns> <t1_ns> <marker>
//
// t0 once the lock is held, t1 before it is released, both from
// process.hrtime (CLOCK_MONOTONIC, the clock the other participants read);
// marker "ok" if SET turns:holder NX succeeded, else "taken". Before the
// first round: the start barrier (INCR turns:ready, wait for turns:go).
//
//     node turns_node.js PKG_DIR URL PORT NAME ROUNDS HOLD_MS OUT
//
// PKG_DIR is bindings/node with its addon built; its ioredis (a dev
// dependency) sets the marker.
const fs = require('fs');
const path = require('path');

const [pkg, url, port, name, rounds, holdMs, outFile] = process.argv.slice(2);
if (!outFile) {
  console.error('usage: node turns_node.js PKG_DIR URL PORT NAME ROUNDS HOLD_MS OUT');
  process.exit(2);
}
const { DistributedLock } = require(path.resolve(pkg));
const Redis = require(path.join(path.resolve(pkg), 'node_modules', 'ioredis'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => process.hrtime.bigint();

async function barrier(r) {
  await r.incr('turns:ready');
  const end = Date.now() + 60000;
  while (Date.now() < end) {
    if (await r.exists('turns:go')) return;
    await sleep(2);
  }
  throw new Error('no start signal within 60 s');
}

async function main() {
  const r = new Redis({ host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: 1 });
  const dl = new DistributedLock(url, { ownerLabel: 'turns-node' });
  const out = fs.openSync(outFile, 'w');
  try {
    await barrier(r);
    for (let i = 0; i < Number(rounds); i++) {
      const h = await dl.waitForLock(name, 60000, 10000);
      const t0 = now();
      const set = await r.set('turns:holder', `node ${i}`, 'NX');
      await sleep(Number(holdMs));
      if (set === 'OK') await r.del('turns:holder');
      const t1 = now();
      await h.release();
      fs.writeSync(out, `node ${i} ${h.fence} ${t0} ${t1} ${set === 'OK' ? 'ok' : 'taken'}\n`);
    }
  } finally {
    fs.closeSync(out);
    await dl.close();
    r.disconnect();
  }
}

main().catch((e) => { console.error(`turns_node: ${e.stack || e}`); process.exit(1); });
