// Type declarations for dlock (Node.js). The seed's API (DistributedLock,
// LockHandle, LockInfo, LockOptions, LockAcquisitionError,
// InvalidLockError) plus what dlock adds, marked "dlock:" below.

import { EventEmitter } from 'events';

/** Status names of libdlock (dlock.h, DLOCK_ERRNO_MAP) without the DLOCK_ prefix. */
export type DlockCode =
  | 'OK' | 'EBUSY' | 'ETIMEDOUT' | 'ENOTHELD' | 'EINVAL' | 'EIO' | 'ESERVER' | 'ENOQUORUM'
  | 'EUNKNOWN' | 'ENOMEM' | 'EPROTO' | 'ENOTSUP' | 'ECANCELED';

export interface LockOptions {
  /** Prepended to every key (`<prefix>{<key>}`). Default 'dlock:' (shared with the C library and the tool). */
  keyPrefix?: string;
  /** acquire(): retries after the first attempt. Default 10. Aliases: retryAttempts, maxRetries. */
  retryCount?: number;
  retryAttempts?: number;
  maxRetries?: number;
  /** Backoff base, doubling each retry (the seed's option). Default 100. */
  retryDelayMs?: number;
  /** Backoff cap. Default 1000. */
  retryMaxDelayMs?: number;
  /** +-% random jitter on each delay. Default 20. */
  retryJitterPct?: number;
  /** Clock drift allowance: validity = ttl - elapsed - (ttl * driftFactor + 2 ms). Default 0.01. */
  driftFactor?: number;
  /** Per server connect / command round trip, ms. Default 1000 each. */
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** dlock: maintain a fencing counter per key. Default true. */
  fencing?: boolean;
  /** dlock: 'push' (FIFO, woken by the release; default) or 'poll' (the seed's backoff). */
  waiting?: 'push' | 'poll';
  /** dlock: stored with the lock, shown by inspect() and `dlock status`. */
  ownerLabel?: string;
  /** dlock: the pid stored with the lock (default: this process). */
  ownerPid?: number;
  /** dlock: WAIT for this many replicas after each acquire (Sentinel). Default 0. */
  replicas?: number;
  replicaTimeoutMs?: number;
  /** The ttl used when acquire / tryAcquire / waitForLock get none. Default 30000. */
  defaultTtlMs?: number;
  /** dlock: keep every acquired lock alive (true: every ttl/3 ms; a number: that interval). Default false. */
  autoExtend?: boolean | number;
  /** dlock: called once when automatic extension finds a lease gone. */
  onLost?: (err: InvalidLockError, handle: LockHandle) => void;
}

/** dlock: per-call options (the last argument of acquire, tryAcquire, waitForLock). */
export interface AcquireOptions {
  /** Abort the call: it rejects with signal.reason and leaves nothing behind (no queue entry, no lease). */
  signal?: AbortSignal;
  autoExtend?: boolean | number;
  onLost?: (err: InvalidLockError, handle: LockHandle) => void;
}

export interface LockInfo {
  key: string;
  token: string;
  /** ms since the epoch */
  acquiredAt: number;
  /** ms since the epoch: the end of the lease's local validity */
  expiresAt: number;
  isHeld: boolean;
  /** dlock: the fencing token */
  fence: bigint;
}

/** dlock: what inspect() finds on the server. */
export interface HolderInfo {
  locked: boolean;
  /** remaining lease in ms, -1 when free */
  pttl: number;
  /** the holder's fence (the last one issued when free); 0n if none */
  fence: bigint;
  /** ms since the epoch, 0 when free */
  acquiredAt: number;
  pid: number;
  host: string;
  label: string;
  token: string;
  /** processes queued for the lock */
  waiters: number;
}

export class DlockError extends Error {
  constructor(message?: string, options?: { code?: DlockCode; status?: number; detail?: string; key?: string; cause?: unknown });
  /** The status name ('EBUSY', 'EIO', ...). */
  code: DlockCode;
  /** The numeric status of dlock.h. */
  status: number;
  /** What exactly failed, from the library ("connect 127.0.0.1:6390: Connection refused"). */
  detail: string;
  key?: string;
}
export class LockAcquisitionError extends DlockError {}
export class InvalidLockError extends DlockError {}

export class LockHandle extends EventEmitter {
  readonly key: string;
  readonly token: string;
  /** dlock: strictly rising per key across holders (exact int64, hence a bigint). */
  readonly fence: bigint;
  /** Local: the lease is valid by this process's monotonic clock and was not released or lost. */
  readonly isHeld: boolean;
  readonly info: LockInfo;
  /** Release; InvalidLockError if this handle no longer holds the lock. */
  release(): Promise<void>;
  /** Set the remaining lease to extensionMs (> 0); InvalidLockError if no longer held. */
  extend(extensionMs: number): Promise<void>;
  /** dlock: extend every intervalMs (default ttl/3) from the event loop until released or lost. */
  startAutoExtend(intervalMs?: number): void;
  stopAutoExtend(): void;
  /** The seed's internal clean-up: forget the lock locally (no server call). */
  markAsReleased(): void;
  [Symbol.asyncDispose](): Promise<void>;
  on(event: 'lost', listener: (err: InvalidLockError) => void): this;
  once(event: 'lost', listener: (err: InvalidLockError) => void): this;
}

/** An ioredis client (Redis or Cluster): only its connection options are read. */
export interface RedisLike {
  options?: {
    host?: string; port?: number; path?: string; username?: string; password?: string;
    db?: number; tls?: unknown; sentinels?: Array<{ host?: string; port?: number }>; name?: string;
    redisOptions?: { username?: string; password?: string };
  };
  isCluster?: boolean;
  startupNodes?: Array<string | { host?: string; port?: number }>;
}

export class DistributedLock {
  /** An ioredis client, or a dlock URL: redis://[user[:pw]@]host[:port][/db], unix:///path, redis://h1,h2,h3 (Redlock). */
  constructor(redis: RedisLike | string | URL, options?: LockOptions);
  readonly options: Readonly<Required<Pick<LockOptions, 'keyPrefix' | 'retryCount' | 'retryDelayMs'>>> & LockOptions;
  /** Retries with backoff (woken by a release); LockAcquisitionError when still held. */
  acquire(key: string, ttl?: number, options?: AcquireOptions): Promise<LockHandle>;
  /** One attempt: null when the lock is held. */
  tryAcquire(key: string, ttl?: number, options?: AcquireOptions): Promise<LockHandle | null>;
  /** Waits up to timeout ms (FIFO); LockAcquisitionError after it. */
  waitForLock(key: string, timeout: number, ttl?: number, options?: AcquireOptions): Promise<LockHandle>;
  isLocked(key: string): Promise<boolean>;
  /** dlock: who holds the lock. */
  inspect(key: string): Promise<HolderInfo>;
  /** dlock: close the connections; calls in flight reject with code ECANCELED. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** dlock: the status table of dlock.h, by name. */
export const statuses: Readonly<Record<DlockCode, number>>;
/** dlock: libdlock's version ("0.1.0"). */
export const version: string;
/** dlock: the dlock URL an ioredis client's options describe. */
export function urlFromClient(redis: RedisLike): string;
