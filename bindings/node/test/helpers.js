'use strict';
// Test helpers: real redis-server processes on free loopback ports (never a
// mock), killed by PID when the test file ends; a plain client (ioredis) to
// look at what the server holds; and polling with a deadline instead of
// sleeps as synchronisation.
const { after } = require('node:test');
const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const Redis = require('ioredis');

const started = new Set();
const inspectors = new Set();

// Ports below the kernel's ephemeral range, with room for a cluster bus
// (port + 10000) below it as well: an ephemeral port, once closed, may
// become the local port of any outgoing connection of a test running
// alongside, and a server started (or restarted) on it would fail to bind.
function ephemeralLow() {
  try {
    const lo = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return lo > 0 ? lo : 32768;
  } catch {
    return 32768;
  }
}

function bindable(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function freePort() {
  const low = 10000;
  const high = ephemeralLow() - 10000;
  for (let i = 0; i < 500 && high > low; i++) {
    const port = low + crypto.randomInt(high - low);
    if (await bindable(port) && await bindable(port + 10000)) return port;
  }
  throw new Error('no free 127.0.0.1 port below the ephemeral range');
}

function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
  });
}

// A server whose refusal to answer PING (e.g. -NOAUTH) still shows it is up.
async function waitUp(port, proc, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (proc.exitCode !== null) return false;
    if (await ping(port)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/**
 * Start `redis-server` with argv(port, dir) on a free 127.0.0.1 port, in a
 * private directory (made by the caller when dir is given). Returns
 * { port, url, pid, dir, stop(signal) } or null if it did not come up
 * (the port was taken meanwhile).
 */
async function spawnOn(port, dir, argv) {
  const proc = spawn('redis-server', argv, { stdio: 'ignore' });
  const spawnErr = new Promise((resolve) => proc.once('error', resolve));
  const up = await Promise.race([waitUp(port, proc, 5000), spawnErr.then((e) => { throw e; })]);
  if (!up) {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    return null;
  }
  const srv = {
    port,
    pid: proc.pid,
    dir,
    url: `redis://127.0.0.1:${port}`,
    // SIGTERM (or signal) by PID; the promise resolves once the process
    // has exited. A second stop only waits.
    stop(signal = 'SIGTERM') {
      started.delete(srv);
      const gone = proc.exitCode !== null || proc.signalCode !== null;
      const exited = gone ? Promise.resolve() : new Promise((r) => proc.once('exit', r));
      if (!gone) process.kill(proc.pid, signal);
      return exited.then(() => fs.rmSync(dir, { recursive: true, force: true }));
    },
  };
  started.add(srv);
  return srv;
}

/**
 * Start `redis-server` on a free 127.0.0.1 port with no persistence, in a
 * private directory. extra: more arguments (e.g. ['--requirepass', 'pw']).
 * Returns { port, url, pid, dir, stop(signal) } (stop returns a promise).
 */
async function startServer(extra = []) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dlock-node-test-'));
    const srv = await spawnOn(port, dir, ['--port', String(port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', dir, ...extra]);
    if (srv) return srv;
    fs.rmSync(dir, { recursive: true, force: true }); // the port was taken: try another
  }
  throw new Error('could not start redis-server on a free port');
}

// At exit, what a test file left running: SIGTERM now (nothing can wait).
process.on('exit', () => {
  for (const s of [...started]) s.stop();
});

/** An ioredis connection to look at the server (disconnected at the end of the file at the latest). */
function inspector(srv, opts = {}) {
  const r = new Redis({ port: srv.port, host: '127.0.0.1', maxRetriesPerRequest: 1, ...opts });
  // Once only: a second disconnect() leaves a 2 s timer of ioredis running.
  const disconnect = r.disconnect.bind(r);
  r.disconnect = () => {
    if (inspectors.delete(r)) disconnect();
  };
  inspectors.add(r);
  return r;
}

// A test that fails half-way leaves its connections and servers behind:
// close them after the file's tests, so that the process can end.
after(async () => {
  for (const r of [...inspectors]) r.disconnect();
  await Promise.all([...started].map((s) => s.stop()));
});

/** Poll fn() until it returns truthy, or throw after ms. */
async function until(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Threads of this process (Linux): no binding call may add one per wait. */
function threadCount() {
  return fs.readdirSync('/proc/self/task').length;
}

module.exports = { startServer, spawnOn, freePort, inspector, until, sleep, threadCount };
