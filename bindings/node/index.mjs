// ESM entry: the same objects as index.js (CommonJS).
import dlock from './index.js';

export const {
  DistributedLock,
  LockHandle,
  LockAcquisitionError,
  InvalidLockError,
  DlockError,
  statuses,
  version,
  urlFromClient,
} = dlock;
export default dlock;
