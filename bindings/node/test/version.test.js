'use strict';
// The package's version is the library's: include/dlock.h is the one place
// it is set, and package.json must follow it.
const test = require('node:test');
const assert = require('node:assert/strict');
const dlock = require('..');
const pkg = require('../package.json');

test('package.json carries the version of the libdlock it builds', () => {
  assert.equal(pkg.version, dlock.version);
});
