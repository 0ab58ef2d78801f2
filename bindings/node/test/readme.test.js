'use strict';
// The JavaScript examples of the READMEs run: the first ```js block of the
// top-level README's "Node.js" section and of this package's "Quick start"
// (the same example), with $DLOCK_URL naming a private redis-server (as the
// C and Python examples read it) and `require('dlock')` resolving to this
// package.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { startServer } = require('./helpers');

const PKG = path.resolve(__dirname, '..');
let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); });

// The first ```js block after the heading `heading` in file.
function example(file, heading) {
  const text = fs.readFileSync(file, 'utf8');
  const at = text.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `${heading} in ${file}`);
  const m = /```js\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, `a js block under ${heading} in ${file}`);
  return m[1];
}

function run(code) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlock-readme-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'dlock'));
    assert.match(code, /process\.env\.DLOCK_URL \?\? 'redis:\/\/127\.0\.0\.1:6379'/);
    fs.writeFileSync(path.join(dir, 'example.js'), code);
    return spawnSync(process.execPath, ['example.js'], {
      cwd: dir, encoding: 'utf8', timeout: 20000, env: { ...process.env, DLOCK_URL: srv.url },
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const sources = [
  [path.join(PKG, '..', '..', 'README.md'), '## Node.js'],
  [path.join(PKG, 'README.md'), '## Quick start'],
];

for (const [file, heading] of sources) {
  test(`${path.relative(path.join(PKG, '..', '..'), file)}, ${heading}: the example runs`, { timeout: 30000 }, () => {
    const r = run(example(file, heading));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^holding with fence \d+$/m);
  });
}

test('the two README examples are the same', () => {
  assert.equal(example(...sources[0]), example(...sources[1]));
});
