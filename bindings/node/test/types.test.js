'use strict';
// index.d.ts: a seed user's code and the additions type-check under
// --strict (test/types/usage.ts; compiled, not run).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

test('index.d.ts type-checks a seed user\'s code with only the import changed', { timeout: 60000 }, () => {
  const pkg = path.resolve(__dirname, '..');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlock-types-'));
  try {
    // Resolve 'dlock' to this package and ioredis/@types/node from its node_modules.
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(pkg, path.join(dir, 'node_modules', 'dlock'));
    for (const m of ['ioredis', '@types']) fs.symlinkSync(path.join(pkg, 'node_modules', m), path.join(dir, 'node_modules', m));
    fs.copyFileSync(path.join(__dirname, 'types', 'usage.ts'), path.join(dir, 'usage.ts'));
    const tsc = require.resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'node16',
      '--moduleResolution', 'node16', '--lib', 'es2022,esnext.disposable', '--types', 'node', 'usage.ts'],
    { cwd: dir, encoding: 'utf8', timeout: 50000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
