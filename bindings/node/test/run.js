'use strict';
// npm test: run each test file in its own `node --test` process, one after
// another (they start their own redis-servers; timing checks such as the fs
// latency one should not share two CPUs with another file), each bounded.
// Each file runs in a process group of its own: on timeout the whole group
// (node --test, the file's process, the redis-servers it started) is killed
// by its id, so nothing outlives a hung file.
//   node test/run.js [FILE...]     default: every test/*.test.js
//   DLOCK_TEST_FILE_TIMEOUT=SEC    per file, default 180
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const dir = __dirname;
const files = process.argv.length > 2
  ? process.argv.slice(2)
  : fs.readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join(dir, f));
const limit = Number(process.env.DLOCK_TEST_FILE_TIMEOUT || 180) * 1000;

function runFile(f) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', f], { stdio: 'inherit', detached: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid, 'SIGKILL');
    }, limit);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut });
    });
  });
}

(async () => {
  let failed = 0;
  for (const f of files) {
    const t0 = Date.now();
    const r = await runFile(f);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (r.code !== 0) {
      failed++;
      const why = r.timedOut ? `killed after ${limit / 1000} s` : `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}`;
      console.error(`FAIL ${path.basename(f)}: ${why}, ${secs} s`);
    } else {
      console.error(`ok   ${path.basename(f)} (${secs} s)`);
    }
  }
  console.error(failed ? `${failed} of ${files.length} test files failed` : `all ${files.length} test files passed`);
  process.exit(failed ? 1 : 0);
})();
