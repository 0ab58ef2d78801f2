// Compiled (not run) by types.test.js with tsc --noEmit --strict: a seed
// user's code, with only the import changed, and the additions.
import Redis from 'ioredis';
import {
  DistributedLock, LockHandle, LockAcquisitionError, InvalidLockError, DlockError, HolderInfo, LockInfo,
} from 'dlock';

async function seedStyle(redis: Redis): Promise<void> {
  const lock = new DistributedLock(redis, { retryDelayMs: 100 });
  const handle: LockHandle = await lock.acquire('report', 30000);
  try {
    await handle.extend(60000);
    const info: LockInfo = handle.info;
    const held: boolean = handle.isHeld && info.isHeld;
    console.log(info.key, info.token, info.acquiredAt, info.expiresAt, held);
  } finally {
    await handle.release();
  }
  const maybe: LockHandle | null = await lock.tryAcquire('report', 1000);
  if (maybe) await maybe.release();
  const waited = await lock.waitForLock('report', 5000, 30000);
  await waited.release();
  const locked: boolean = await lock.isLocked('report');
  console.log(locked);
  try {
    await lock.acquire('report', 1000);
  } catch (e) {
    if (e instanceof LockAcquisitionError) console.log(e.message, e.code);
    else if (e instanceof InvalidLockError) console.log(e.key);
  }
}

async function extras(): Promise<void> {
  const lock = new DistributedLock('redis://127.0.0.1:6379', { ownerLabel: 'worker', autoExtend: true });
  const ac = new AbortController();
  const h = await lock.waitForLock('job', 10000, 30000, {
    signal: ac.signal,
    onLost: (err: InvalidLockError, lost: LockHandle) => console.log(err.code, lost.key),
  });
  const fence: bigint = h.fence;
  h.on('lost', (err) => console.log(err.detail));
  h.startAutoExtend(5000);
  h.stopAutoExtend();
  const who: HolderInfo = await lock.inspect('job');
  console.log(fence + 1n, who.host, who.pid, who.label, who.waiters, who.fence, who.pttl);
  await h[Symbol.asyncDispose]();
  const e = new DlockError('x', { code: 'EIO' });
  console.log(e.status);
  await lock.close();
}

void seedStyle;
void extras;
