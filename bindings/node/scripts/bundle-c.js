'use strict';
// prepack: copy libdlock's C sources (../../src, ../../include) into
// ./dlock, so that the npm pack tarball builds from source on its own.
// postpack (--clean) removes the copy again, so that a build in the
// repository always uses the sources of the checkout.
const fs = require('fs');
const path = require('path');

const PKG = path.resolve(__dirname, '..');
const REPO = path.resolve(PKG, '..', '..');
const DEST = path.join(PKG, 'dlock');

if (process.argv[2] === '--clean') {
  fs.rmSync(DEST, { recursive: true, force: true });
} else {
  if (!fs.existsSync(path.join(REPO, 'src', 'lock', 'engine.c')))
    throw new Error('dlock: prepack runs in bindings/node of the dlock repository');
  fs.rmSync(DEST, { recursive: true, force: true });
  for (const d of ['src', 'include'])
    fs.cpSync(path.join(REPO, d), path.join(DEST, d), {
      recursive: true,
      filter: (p) => fs.statSync(p).isDirectory() || /\.[ch]$/.test(p),
    });
}
