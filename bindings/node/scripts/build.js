'use strict';
// Build the addon offline: node-gyp rebuild --nodedir=DIR, where DIR holds
// the running node's headers (DIR/include/node/node_api.h and common.gypi).
// node-gyp would otherwise download the headers from nodejs.org, which these
// machines cannot reach. Debian's nodejs (through libnode-dev, which its npm
// pulls in) and NodeSource's nodejs both install them under /usr; a node
// from a tarball has them under its own prefix.
//   node scripts/build.js            npm runs this at install (and as "build")
//   DLOCK_NODEDIR=DIR                use DIR (npm_config_nodedir works too)
//   DLOCK_DEBUG=1                    a Debug build (node-gyp --debug)
// Without local headers it falls back to a plain `node-gyp rebuild`, which
// downloads them, and says so.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

function hasHeaders(dir) {
  const inc = path.join(dir, 'include', 'node');
  return fs.existsSync(path.join(inc, 'node_api.h')) && fs.existsSync(path.join(inc, 'common.gypi'));
}

function headerMajor(dir) {
  try {
    const h = fs.readFileSync(path.join(dir, 'include', 'node', 'node_version.h'), 'utf8');
    const m = /#define NODE_MAJOR_VERSION (\d+)/.exec(h);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function candidates() {
  const out = [];
  for (const v of [process.env.DLOCK_NODEDIR, process.env.npm_config_nodedir]) if (v) out.push(v);
  const prefix = process.config && process.config.variables && process.config.variables.node_prefix;
  if (prefix) out.push(prefix);
  out.push(path.resolve(path.dirname(process.execPath), '..'), '/usr', '/usr/local');
  return [...new Set(out)];
}

// The first candidate with headers of the running node's major version;
// failing that, the first with any headers (Node-API is ABI-stable, so an
// addon built against other headers of the same API level still loads).
function findNodedir() {
  const major = Number(process.versions.node.split('.')[0]);
  const found = candidates().filter(hasHeaders);
  return found.find((d) => headerMajor(d) === major) || found[0] || null;
}

function main() {
  const gyp = require.resolve('node-gyp/bin/node-gyp.js');
  const args = [gyp, 'rebuild'];
  const dir = findNodedir();
  if (dir) args.push('--nodedir=' + dir);
  else console.error('dlock: no local Node.js headers found; node-gyp will try to download them');
  if (process.env.DLOCK_DEBUG) args.push('--debug');
  const jobs = process.env.JOBS || process.env.npm_config_jobs;
  if (jobs) args.push('--jobs=' + jobs);
  console.error('dlock: node ' + args.slice(1).join(' '));
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: path.resolve(__dirname, '..') });
  if (r.error) throw r.error;
  process.exit(r.status === null ? 1 : r.status);
}

module.exports = { findNodedir };
if (require.main === module) main();
