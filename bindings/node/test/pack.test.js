'use strict';
// `npm pack` gives a tarball that installs and builds from source on its own:
// libdlock's C sources inside (prepack), the addon compiled at install time
// against the local Node headers. Installed with --offline (npm's cache has
// node-addon-api and node-gyp from this package's own install) and with the
// proxy pointed at a closed port, so that any download fails the test.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawnSync } = require('child_process');
const { startServer } = require('./helpers');

const PKG = path.resolve(__dirname, '..');
const NPM = process.env.npm_execpath; // set when run by npm; else npm from PATH
let srv, dir;
before(async () => {
  srv = await startServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlock-pack-'));
});
after(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  await srv.stop();
});

function npm(args, cwd, env = {}) {
  const cmd = NPM ? process.execPath : 'npm';
  const argv = NPM ? [NPM, ...args] : args;
  return spawnSync(cmd, argv, { cwd, encoding: 'utf8', timeout: 240000, env: { ...process.env, ...env } });
}

test('npm pack, then npm install of the tarball offline, builds and works', { timeout: 300000 }, () => {
  const packed = npm(['pack', '--pack-destination', dir], PKG);
  assert.equal(packed.status, 0, packed.stderr);
  const tgz = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith('.tgz')));
  const files = execFileSync('tar', ['tzf', tgz], { encoding: 'utf8' }).split('\n');
  for (const f of ['package/dlock/include/dlock.h', 'package/dlock/src/lock/engine.c',
    'package/dlock/include/dlock/adapters/libuv.h', 'package/src/addon.cc', 'package/index.d.ts'])
    assert.ok(files.includes(f), `${f} in the tarball`);
  assert.ok(!files.some((f) => f.startsWith('package/test/') || f.startsWith('package/node_modules/')));
  assert.ok(!fs.existsSync(path.join(PKG, 'dlock')), 'postpack removed the copy');

  const app = path.join(dir, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","version":"1.0.0","private":true}\n');
  const off = 'http://127.0.0.1:9';
  const inst = npm(['install', '--offline', '--no-audit', '--no-fund', '--foreground-scripts', tgz], app, {
    npm_config_proxy: off, npm_config_https_proxy: off, HTTP_PROXY: off, HTTPS_PROXY: off,
    JOBS: process.env.JOBS || '2',
  });
  assert.equal(inst.status, 0, inst.stdout + inst.stderr);
  assert.match(inst.stdout + inst.stderr, /dlock: node rebuild --nodedir=/);

  fs.writeFileSync(path.join(app, 'main.mjs'), `
    import { DistributedLock, LockAcquisitionError } from 'dlock';
    const dl = new DistributedLock(${JSON.stringify(srv.url)});
    const h = await dl.acquire('from-tarball', 5000);
    if (await dl.tryAcquire('from-tarball', 5000) !== null) throw new Error('not exclusive');
    console.log('fence', h.fence, typeof LockAcquisitionError);
    await h.release();
    await dl.close();
  `);
  const r = spawnSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^fence 1n function$/m);
});
