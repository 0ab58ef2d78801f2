'use strict';
// Where libdlock's C sources are, for binding.gyp:
//   node scripts/dlock-root.js root      the directory holding src/ and include/
//   node scripts/dlock-root.js sources   every src/<layer>/*.c, one per line
//   node scripts/dlock-root.js includes  include/ and each layer's directory
// An npm pack tarball carries a copy in ./dlock (made by scripts/bundle-c.js
// at prepack); in the repository the sources are ../../src and ../../include.
// Paths are printed relative to this package's directory, as gyp wants them.
const fs = require('fs');
const path = require('path');

const PKG = path.resolve(__dirname, '..');
// The library's layers, bottom to top (the same list as CMakeLists.txt).
const LAYERS = ['base', 'net', 'topo', 'quorum', 'proto', 'lock', 'api'];

function root() {
  for (const rel of ['dlock', path.join('..', '..')]) {
    if (fs.existsSync(path.join(PKG, rel, 'src', 'lock', 'engine.c')) &&
        fs.existsSync(path.join(PKG, rel, 'include', 'dlock.h')))
      return rel;
  }
  throw new Error('dlock: C sources not found in ./dlock or ../.. (see README, "Building")');
}

function sources(r) {
  const out = [];
  for (const layer of LAYERS) {
    const dir = path.join(r, 'src', layer);
    for (const f of fs.readdirSync(path.join(PKG, dir)).sort())
      if (f.endsWith('.c')) out.push(path.join(dir, f));
  }
  return out;
}

function includes(r) {
  return [path.join(r, 'include')].concat(LAYERS.map((l) => path.join(r, 'src', l)));
}

module.exports = { root, sources, includes, LAYERS };

if (require.main === module) {
  const r = root();
  const what = process.argv[2] || 'root';
  const list = what === 'sources' ? sources(r) : what === 'includes' ? includes(r) : [r];
  process.stdout.write(list.join('\n') + '\n');
}
