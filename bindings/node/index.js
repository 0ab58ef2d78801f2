'use strict';
// dlock for Node.js: the seed's API (DistributedLock, LockHandle,
// LockAcquisitionError, InvalidLockError) over libdlock's engine, which the
// addon drives from this process's own libuv loop. No call blocks the JS
// thread or holds a libuv pool thread while it waits.
const { EventEmitter } = require('events');
const path = require('path');

const native = loadAddon();

function loadAddon() {
  for (const dir of ['Release', 'Debug']) {
    try {
      return require(path.join(__dirname, 'build', dir, 'dlock_node.node'));
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  throw new Error(`dlock: the native addon is not built; run \`npm run build\` in ${__dirname}`);
}

const S = native.statuses; // { OK: 0, EBUSY: -1, ... } from dlock.h
const NAMES = Object.fromEntries(Object.entries(S).map(([k, v]) => [v, k]));
const KIND = { ACQUIRE: 0, TRY: 1, WAIT: 2, INSPECT: 3 };
const asyncDispose = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose');

// Internal entry points shared by the two classes (not part of the API).
const kInit = Symbol('dlock.init');
const kLost = Symbol('dlock.lost');
const kClient = Symbol('dlock.client');

/** Base class of every error dlock raises: `code` is the status name. */
class DlockError extends Error {
  constructor(message, options = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.code = options.code || 'EIO';
    this.status = options.status !== undefined ? options.status : S[this.code];
    this.detail = options.detail || '';
    if (options.key !== undefined) this.key = options.key;
  }
}
/** The lock could not be acquired (busy after the retries, or the wait timed out). */
class LockAcquisitionError extends DlockError {}
/** The handle does not hold the lock (released, expired, lost or taken). */
class InvalidLockError extends DlockError {}

function statusError(status, detail, key, Cls = DlockError) {
  const code = NAMES[status] || 'EPROTO';
  const what = native.strerror(status);
  const where = key !== undefined ? `lock "${key}": ` : '';
  return new Cls(`${where}${what}${detail ? ` (${detail})` : ''}`, { code, status, detail, key });
}

// The seed documents retryDelayMs and the 100 ms / 1 s backoff; the other
// names below are this package's (with the spellings of the retry count
// that seed-style code uses accepted as aliases).
const DEFAULTS = Object.freeze({
  keyPrefix: 'dlock:',
  retryCount: 10,
  retryDelayMs: 100,
  retryMaxDelayMs: 1000,
  retryJitterPct: 20,
  driftFactor: 0.01,
  connectTimeoutMs: 1000,
  commandTimeoutMs: 1000,
  fencing: true,
  waiting: 'push',
  ownerLabel: undefined,
  ownerPid: 0,
  replicas: 0,
  replicaTimeoutMs: 100,
  defaultTtlMs: 30000,
  autoExtend: false,
  onLost: undefined,
});

function normalizeOptions(options) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object') throw new TypeError('DistributedLock: options must be an object');
  const o = { ...DEFAULTS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) o[k] = v;
  for (const alias of ['retryAttempts', 'maxRetries'])
    if (options[alias] !== undefined && options.retryCount === undefined) o.retryCount = options[alias];
  if (o.waiting !== 'push' && o.waiting !== 'poll')
    throw new TypeError("DistributedLock: options.waiting must be 'push' or 'poll'");
  return Object.freeze(o);
}

// ---- connection: a URL string, a URL object, or an ioredis client ----

const enc = encodeURIComponent;

function hostPort(host, port) {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${h}:${port}`;
}

function userinfo(o) {
  const user = o.username ? enc(o.username) : '';
  if (o.password === undefined || o.password === null || o.password === '')
    return user ? `${user}@` : '';
  return `${user}:${enc(o.password)}@`;
}

/** The dlock URL for an ioredis client (Redis or Cluster), from its options. */
function urlFromClient(r) {
  if (r && r.isCluster) {
    const ro = (r.options && r.options.redisOptions) || {};
    const nodes = (r.startupNodes || []).map((n) =>
      typeof n === 'string' ? n.replace(/^rediss?:\/\//, '') : hostPort(n.host || 'localhost', n.port || 6379));
    return `redis-cluster://${userinfo(ro)}${nodes.join(',')}`;
  }
  const o = r && r.options;
  if (!o || typeof o !== 'object')
    throw new TypeError('DistributedLock: expected a URL string or an ioredis client (with .options)');
  if (Array.isArray(o.sentinels) && o.sentinels.length > 0) {
    const hosts = o.sentinels.map((s) => hostPort(s.host || 'localhost', s.port || 26379));
    return `redis-sentinel://${userinfo(o)}${hosts.join(',')}/${enc(o.name || 'mymaster')}`;
  }
  if (o.path) {
    const p = o.path.split('/').map(enc).join('/');
    return `unix://${userinfo(o)}${p}${o.db ? `?db=${o.db}` : ''}`;
  }
  const scheme = o.tls ? 'rediss' : 'redis';
  const db = o.db ? `/${o.db}` : '';
  return `${scheme}://${userinfo(o)}${hostPort(o.host || 'localhost', o.port || 6379)}${db}`;
}

function toUrl(redis) {
  if (typeof redis === 'string') return redis;
  if (redis instanceof URL) return redis.href;
  return urlFromClient(redis);
}

function checkKey(key) {
  if (typeof key !== 'string') throw new TypeError('lock key must be a string');
}

function checkMs(v, what) {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${what} must be a number of milliseconds`);
  return Math.trunc(v);
}

// ---- LockHandle ----

/**
 * One acquired lock. Created by DistributedLock; never constructed by users.
 * Emits 'lost' (err) when automatic extension finds the lease gone.
 */
class LockHandle extends EventEmitter {
  #owner; #ext; #key; #token; #fence; #acquiredAt; #expiresAt;
  #released = false;
  #lostId = 0;
  #onLost;

  [kInit](owner, ext, key, fence, token, acquiredAt, expiresAt, onLost) {
    this.#owner = owner;
    this.#ext = ext;
    this.#key = key;
    this.#fence = fence;
    this.#token = token;
    this.#acquiredAt = acquiredAt;
    this.#expiresAt = expiresAt;
    this.#onLost = onLost;
    return this;
  }

  /** The lock's name, as passed to acquire. */
  get key() { return this.#key; }
  /** This holder's token (32 hex digits). */
  get token() { return this.#token; }
  /** The fencing token: strictly rising per name across holders (a bigint; 0n with fencing off). */
  get fence() { return this.#fence; }

  /** True while the lease is valid by this process's monotonic clock and not released or lost. */
  get isHeld() {
    return !this.#released && native.lockHeld(this.#ext);
  }

  /** { key, token, acquiredAt, expiresAt, isHeld, fence }; times are ms since the epoch. */
  get info() {
    const st = this.#released ? null : native.lockState(this.#ext);
    if (st) this.#expiresAt = st[1];
    return {
      key: this.#key,
      token: this.#token,
      acquiredAt: this.#acquiredAt,
      expiresAt: this.#expiresAt,
      isHeld: st ? st[0] : false,
      fence: this.#fence,
    };
  }

  #notHeld(what) {
    return new InvalidLockError(`lock "${this.#key}" is not held by this handle (${what})`, {
      code: 'ENOTHELD', key: this.#key,
    });
  }

  #finish() {
    this.#released = true;
    this.#stopKeepalive();
    native.lockFree(this.#ext);
  }

  /** Release the lock if this handle still holds it; else InvalidLockError. */
  // Settled from the result callback: one promise per release, not a second
  // one from an async function awaiting run()'s (a measurable share of a
  // pair's CPU time in bench/bindings.sh).
  release() {
    if (this.#released) return Promise.reject(this.#notHeld('already released'));
    const ext = this.#ext;
    return this.#owner[kClient].run(() => native.release(ext), this.#key, (p, status, detail) => {
      if (status === S.OK || status === S.ENOTHELD) this.#finish();
      if (status === S.OK) return p.resolve();
      p.reject(statusError(status, detail, this.#key, status === S.ENOTHELD ? InvalidLockError : DlockError));
    });
  }

  /** Set the remaining lease to extensionMs (> 0) if still held; else InvalidLockError. */
  async extend(extensionMs) {
    const ms = checkMs(extensionMs, 'extension');
    if (!(ms > 0)) throw new RangeError('extension must be a positive number of milliseconds');
    if (this.#released) throw this.#notHeld('already released');
    const r = await this.#owner[kClient].run(() => native.extend(this.#ext, ms), this.#key);
    if (r.status === S.ENOTHELD) throw statusError(r.status, r.detail, this.#key, InvalidLockError);
    if (r.status !== S.OK) throw statusError(r.status, r.detail, this.#key);
    const st = native.lockState(this.#ext);
    if (st) this.#expiresAt = st[1];
  }

  /**
   * Keep the lease alive: extend it to its TTL every intervalMs (default
   * ttl/3) from the event loop, until release, stopAutoExtend or loss. A
   * kept-alive lock keeps the process running, as a timer does.
   */
  startAutoExtend(intervalMs = 0) {
    if (this.#released) throw this.#notHeld('already released');
    const ms = checkMs(intervalMs, 'interval');
    const id = this.#lostId || this.#owner[kClient].keep(this);
    const st = native.keepalive(this.#ext, ms, id);
    if (st !== S.OK) {
      if (!this.#lostId) this.#owner[kClient].unkeep(id);
      throw statusError(st, this.#owner[kClient].errstr(), this.#key,
        st === S.ENOTHELD ? InvalidLockError : DlockError);
    }
    this.#lostId = id;
  }

  /** Stop automatic extension (the lease then runs out by its TTL unless released). */
  stopAutoExtend() {
    this.#stopKeepalive();
  }

  #stopKeepalive() {
    if (!this.#lostId) return;
    native.keepaliveStop(this.#ext);
    this.#owner[kClient].unkeep(this.#lostId);
    this.#lostId = 0;
  }

  [kLost](status, detail) {
    this.#lostId = 0;
    const why = status === S.ENOTHELD
      ? 'automatic extension found the lease gone: its key is gone or carries another token'
      : 'automatic extension: the lock could not be extended before its lease ran out';
    const err = statusError(status, detail || why, this.#key, InvalidLockError);
    process.nextTick(() => {
      if (this.#onLost) this.#onLost(err, this);
      this.emit('lost', err);
    });
  }

  /** The seed's internal clean-up: forget the lock locally (no server call). */
  markAsReleased() {
    if (!this.#released) this.#finish();
  }

  /** `await using lock = await dl.acquire(...)`: release at scope end (a lost lock is not an error here). */
  async [asyncDispose]() {
    if (this.#released) return;
    try {
      await this.release();
    } catch (e) {
      if (!(e instanceof InvalidLockError)) throw e;
    }
  }
}

// ---- the client behind a DistributedLock ----

// Pending operations by engine id, kept-alive handles by lost id, and the
// addon's client. Separate from DistributedLock so that its fields stay
// private and its surface is the seed's.
class Client {
  constructor(url, options) {
    this.pending = new Map();
    this.kept = new Map();
    this.nextLost = 1;
    this.closing = false; // close() began: no new operation starts
    this.closed = false;  // the native client is gone
    // Held here, strongly: the addon references them weakly while idle.
    this.onDone = (id, status, detail, a, b, c, d, e) => {
      const p = this.pending.get(id);
      if (p === undefined) return;
      this.pending.delete(id);
      p.settle(status, detail, a, b, c, d, e);
    };
    this.onLost = (id, status, detail) => {
      const h = this.kept.get(id);
      if (h === undefined) return;
      this.kept.delete(id);
      h[kLost](status, detail);
    };
    const r = native.clientNew(url, options, this.onDone, this.onLost);
    if (Array.isArray(r)) throw statusError(r[0], r[1]);
    this.ext = r;
  }

  errstr() {
    return native.errstr(this.ext);
  }

  closedError(key) {
    return new DlockError(`${key !== undefined ? `lock "${key}": ` : ''}the DistributedLock is closed`, {
      code: 'EINVAL', key,
    });
  }

  // Start an operation (start() returns its id or a status < 0) and resolve
  // with { status, detail, a.. } when it ends; `settle` overrides that.
  run(start, key, settle, signal, acquiring = false) {
    return new Promise((resolve, reject) => {
      if (this.closing) return reject(this.closedError(key));
      const id = start(this.ext);
      if (id < 0) return reject(statusError(id, this.errstr(), key));
      const p = { resolve, reject, signal, onAbort: null, aborted: false, settle: null, acquiring };
      p.settle = (status, detail, a, b, c, d, e) => {
        if (p.signal) p.signal.removeEventListener('abort', p.onAbort);
        if (settle) settle(p, status, detail, a, b, c, d, e);
        else resolve({ status, detail, a });
      };
      if (signal) {
        p.onAbort = () => {
          p.aborted = true;
          native.cancel(this.ext, id); // the result comes back as ECANCELED (or as it was)
        };
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.pending.set(id, p);
    });
  }

  keep(handle) {
    const id = this.nextLost++;
    this.kept.set(id, handle);
    return id;
  }

  unkeep(id) {
    this.kept.delete(id);
  }

  // Close: stop the keepalives, cancel the acquires in flight (they leave
  // the wait queue, and a lease one got meanwhile is released by token),
  // let releases and extensions in flight finish, then free the client.
  // Bounded by one connect + command timeout; what is still in flight then
  // is dropped (its promise rejects with ECANCELED).
  async close(graceMs) {
    if (this.closing) return this.closedPromise;
    this.closing = true;
    this.closedPromise = (async () => {
      for (const h of [...this.kept.values()]) h.stopAutoExtend();
      for (const [id, p] of this.pending) if (p.acquiring) native.cancel(this.ext, id);
      const end = Date.now() + graceMs;
      while ((this.pending.size > 0 || !native.idle(this.ext)) && Date.now() < end)
        await new Promise((r) => setTimeout(r, 5));
      this.destroy();
    })();
    return this.closedPromise;
  }

  // Free the native client now (also what close() ends with).
  destroy() {
    this.closing = true;
    if (this.closed) return;
    this.closed = true;
    native.close(this.ext);
    const err = new DlockError('the DistributedLock was closed while the operation was in flight', {
      code: 'ECANCELED',
    });
    for (const p of this.pending.values()) {
      if (p.signal) p.signal.removeEventListener('abort', p.onAbort);
      p.reject(err);
    }
    this.pending.clear();
    this.kept.clear();
  }
}

// ---- DistributedLock ----

class DistributedLock {
  #c;

  /**
   * @param redis an ioredis client (its host, port, username, password, db,
   *   tls, path, sentinels are read from .options; dlock makes its own
   *   connections), or a dlock URL string (redis://, unix://, a Redlock list).
   * @param options see index.d.ts (LockOptions).
   */
  constructor(redis, options = {}) {
    this.options = normalizeOptions(options);
    this.#c = new Client(toUrl(redis), this.options);
  }

  get [kClient]() { return this.#c; }

  #acquireOp(kind, key, ttl, timeout, opts) {
    try {
      checkKey(key);
      return this.#start(kind, key, checkMs(ttl === undefined ? this.options.defaultTtlMs : ttl, 'ttl'),
        checkMs(timeout, 'timeout'), opts);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #start(kind, key, ttlMs, timeout, opts) {
    const o = opts || {};
    const signal = o.signal;
    if (signal && signal.aborted) return Promise.reject(signal.reason);
    const autoExtend = o.autoExtend !== undefined ? o.autoExtend : this.options.autoExtend;
    const onLost = o.onLost || this.options.onLost;
    const c = this.#c;
    const settle = (p, status, detail, ext, fence, token, acquiredAt, expiresAt) => {
      if (status === S.OK) {
        const h = new LockHandle()[kInit](this, ext, key, fence, token, acquiredAt, expiresAt, onLost);
        if (p.aborted || c.closing) {
          native.release(ext); // nobody will hold it: give it back (its result is not awaited)
          native.lockFree(ext);
          return p.reject(p.aborted ? signal.reason : statusError(S.ECANCELED, 'the DistributedLock is closing', key));
        }
        if (autoExtend) {
          try {
            h.startAutoExtend(autoExtend === true ? 0 : autoExtend);
          } catch (e) {
            h.release().catch(() => {});
            return p.reject(e);
          }
        }
        return p.resolve(h);
      }
      if (status === S.ECANCELED && p.aborted) return p.reject(signal.reason);
      if (status === S.EBUSY && kind === KIND.TRY) return p.resolve(null);
      const Cls = status === S.EBUSY || status === S.ETIMEDOUT ? LockAcquisitionError : DlockError;
      p.reject(statusError(status, detail, key, Cls));
    };
    return c.run((ext) => native.start(ext, kind, key, ttlMs, timeout), key, settle, signal, true);
  }

  /**
   * Acquire `key` for ttl ms, retrying with backoff (woken at once by a
   * release); LockAcquisitionError when still held after the retries.
   */
  acquire(key, ttl, opts) {
    return this.#acquireOp(KIND.ACQUIRE, key, ttl, 0, opts);
  }

  /** One attempt: the handle, or null when the lock is held. */
  tryAcquire(key, ttl, opts) {
    return this.#acquireOp(KIND.TRY, key, ttl, 0, opts);
  }

  /** Wait up to timeout ms (FIFO, woken by the release); LockAcquisitionError after it. */
  waitForLock(key, timeout, ttl, opts) {
    return this.#acquireOp(KIND.WAIT, key, ttl, timeout, opts);
  }

  /** Who holds `key`: { locked, pttl, fence, acquiredAt, pid, host, label, waiters, token }. */
  async inspect(key) {
    checkKey(key);
    const r = await this.#c.run((ext) => native.start(ext, KIND.INSPECT, key, 0, 0), key);
    if (r.status !== S.OK) throw statusError(r.status, r.detail, key);
    return r.a;
  }

  /** Whether anyone holds `key` now. */
  async isLocked(key) {
    return (await this.inspect(key)).locked;
  }

  /**
   * Close the connections. Waits and acquires in flight are cancelled
   * (they leave the server's wait queue) and reject with code ECANCELED;
   * releases and extensions in flight finish first (at most one connect +
   * command timeout). Handles stop being held locally; leases not released
   * end by their TTL.
   */
  async close() {
    return this.#c.close(this.options.connectTimeoutMs + this.options.commandTimeoutMs);
  }

  async [asyncDispose]() {
    return this.close();
  }

  // For tests: { locks, inflight, active } of the native client.
  [Symbol.for('dlock.stats')]() {
    return native.stats(this.#c.ext);
  }
}

module.exports = {
  DistributedLock,
  LockHandle,
  LockAcquisitionError,
  InvalidLockError,
  DlockError,
  statuses: S,
  version: native.version,
  urlFromClient,
};
