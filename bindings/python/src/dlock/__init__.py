"""dlock: distributed locks on Redis, from Python.

A thin layer over libdlock (compiled into dlock._dlock), so Python shares
the C library's protocol and guarantees: fencing tokens, FIFO waiting woken
by the release, keepalive with lost-lock detection, Redlock.

    import dlock
    client = dlock.Client("redis://127.0.0.1:6379")
    with client.lock("nightly-report", ttl=30000, timeout=10000) as lock:
        print("holding with fence", lock.fence)

    async with client.lock("nightly-report") as lock:   # asyncio, no threads
        ...

Times are integers in milliseconds, as in the C API and the seed.

Threads: a Client may be shared by threads. Each thread's blocking calls
go through a C client of its own (its own connections), made on the
thread's first call, and run with the GIL released; a Lock can be used from
any thread (its calls take its C client's mutex). The async API has one
more C client of its own, driven by the running event loop.
"""
import asyncio
import atexit
import os
import threading
from typing import Callable, Optional, Union

from . import _dlock
from ._aio import Driver
from ._dlock import (  # noqa: F401  (re-exported)
    NAME_MAX,
    TTL_MAX,
    Cancelled,
    ConnectionError,
    DlockError,
    Holder,
    InvalidArgument,
    InvalidLockError,
    LockAcquisitionError,
    LockBusy,
    LockInfo,
    MaxHoldReached,
    NoQuorum,
    NoReplicas,
    NotHeld,
    NotSupported,
    OutOfMemory,
    ProtocolError,
    ServerError,
    Timeout,
    UnknownOutcome,
    errors,
)

__version__ = _dlock.version
Name = Union[str, bytes]
OnLost = Callable[["Lock", DlockError], object]
DEFAULT_URL = "redis://127.0.0.1:6379"
DEFAULT_TTL = 10000  # ms, as the dlock tool's --ttl

__all__ = [
    "Client", "Lock", "LockContext", "Holder", "LockInfo", "DEFAULT_TTL", "DEFAULT_URL",
    "TTL_MAX", "NAME_MAX", "DlockError", "LockAcquisitionError", "LockBusy", "Timeout",
    "NotHeld", "InvalidArgument", "ConnectionError", "ServerError", "NoQuorum",
    "UnknownOutcome", "OutOfMemory", "ProtocolError", "NotSupported", "Cancelled",
    "MaxHoldReached", "NoReplicas",
    "InvalidLockError", "errors",
]

# A keepalive thread must not call into an interpreter that is shutting down.
atexit.register(_dlock._at_exit)


def _release_on_exit(lock, exc):
    """Context-manager exit: release; a failure to release is raised unless
    the block is already raising (then it is added to that exception as a
    note, so the block's own error is what the caller sees)."""
    try:
        lock.release()
    except DlockError as e:
        if exc is None:
            raise
        exc.add_note(f"dlock: releasing {lock.name!r} failed too: {e}")


def _lost_in_thread(on_lost):
    """on_lost for a lock from the blocking API: the library calls it from
    its keepalive thread, which must not wait on this lock, so the callback
    runs on a thread of its own (one per loss)."""
    def dispatch(lock, err):
        threading.Thread(target=on_lost, args=(lock, err), name="dlock-on-lost",
                         daemon=True).start()
    return dispatch


def _lost_in_loop(loop, on_lost):
    """on_lost for a lock from the async API: run it from the event loop."""
    def dispatch(lock, err):
        loop.call_soon_threadsafe(on_lost, lock, err)
    return dispatch


class Lock(_dlock.Lock):
    """An acquired lease. Made by Client's acquire calls, never directly.

    name, token (32 hex digits), fence, held (local: the lease is valid by
    this process's monotonic clock), info, acquired_at, expires_at (wall
    clock ms); release(), extend(ttl), keepalive(interval=0, on_lost=None),
    stop_keepalive(); and release_async() / extend_async(ttl) for a lock
    from the async API. A Lock is also a context manager that releases it.
    A Lock dropped without release() stops its keepalive; its lease ends by
    its TTL.
    """
    __slots__ = ()

    def keepalive(self, interval: int = 0, on_lost: Optional[OnLost] = None) -> None:
        """Extend the lease every interval ms (0: ttl/3) until released.
        on_lost(lock, error) is called once if the lease is lost (its key
        deleted or taken, or extensions failing until the lease ran out):
        from the event loop for a lock from the async API, else on a new
        thread."""
        if on_lost is not None:
            driver = self._client.driver
            on_lost = (_lost_in_loop(driver.loop, on_lost) if driver is not None
                       else _lost_in_thread(on_lost))
        super().keepalive(interval, on_lost)

    def _driver(self):
        driver = self._client.driver
        if driver is None:
            raise RuntimeError("this lock was acquired with the blocking API: "
                               "use release() / extend()")
        return driver

    async def release_async(self) -> None:
        """Release without blocking the event loop (a lock from the async API)."""
        await self._driver().run(self._release_async, "release")

    async def extend_async(self, ttl: int) -> None:
        """Set the remaining lease to ttl ms without blocking the event loop."""
        await self._driver().run(lambda cb: self._extend_async(ttl, cb), "extend")

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, exc_type, exc, tb):
        _release_on_exit(self, exc)

    async def __aenter__(self) -> "Lock":
        return self

    async def __aexit__(self, exc_type, exc, tb):
        try:
            await self.release_async()
        except DlockError as e:
            if exc is None:
                raise
            exc.add_note(f"dlock: releasing {self.name!r} failed too: {e}")


_dlock._set_lock_class(Lock)


class LockContext:
    """`with client.lock(...) as lock:` and `async with client.lock(...) as lock:`.

    Enter waits for the lock (up to timeout ms; None: without limit) and,
    with auto_extend, keeps it alive; exit releases it, also when the block
    raises. One context may be entered again after it exited, not while
    it is entered.
    """

    def __init__(self, client, name, ttl, timeout, auto_extend, interval, on_lost):
        self._client = client
        self._name = name
        self._ttl = ttl
        self._timeout = TTL_MAX if timeout is None else timeout
        self._auto_extend = auto_extend or on_lost is not None
        self._interval = interval
        self._on_lost = on_lost
        self._lock = None

    def _entered(self, lock):
        if self._auto_extend:
            try:
                lock.keepalive(self._interval, self._on_lost)
            except BaseException:
                _release_on_exit(lock, None)
                raise
        self._lock = lock
        return lock

    def _take(self):
        if self._lock is not None:
            raise RuntimeError(f"lock context for {self._name!r} is already entered")

    def __enter__(self) -> Lock:
        self._take()
        return self._entered(self._client.wait(self._name, self._timeout, self._ttl))

    def __exit__(self, exc_type, exc, tb):
        lock, self._lock = self._lock, None
        _release_on_exit(lock, exc)

    async def __aenter__(self) -> Lock:
        self._take()
        lock = await self._client.wait_async(self._name, self._timeout, self._ttl)
        try:
            return self._entered(lock)
        except BaseException:
            await lock.__aexit__(None, None, None)
            raise

    async def __aexit__(self, exc_type, exc, tb):
        lock, self._lock = self._lock, None
        await lock.__aexit__(exc_type, exc, tb)


class Client:
    """Locks on the deployment a URL names.

    url: redis://[user[:password]@]host[:port][/db], unix:///path, a Redlock
    set redis://h1,h2,h3, redis-sentinel://.../master, redis-cluster://...;
    default $DLOCK_URL, else redis://127.0.0.1:6379. Both the blocking and
    the async API drive all four.

    Options (keyword only; None keeps the library's default): key_prefix,
    owner_label, connect_timeout, command_timeout (ms), retry_count,
    retry_delay, retry_max_delay (ms), retry_jitter (percent), drift_factor,
    fencing, waiting ("push" or "poll"), replicas, replica_timeout (ms),
    owner_pid. Bad options raise InvalidArgument (or ValueError/TypeError)
    here; nothing connects until the first call.
    """

    def __init__(self, url: Optional[str] = None, **options) -> None:
        self._url = url or os.environ.get("DLOCK_URL") or DEFAULT_URL
        self._options = options
        self._local = threading.local()
        self._local.c = _dlock.Client(self._url, **options)
        self._aclient = None
        self._driver_obj = None
        self._mu = threading.Lock()

    def __repr__(self):
        return "<dlock.Client>"  # the URL may carry a password

    # ---- blocking API ----

    def _blocking(self):
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = _dlock.Client(self._url, **self._options)
        return c

    def acquire(self, name: Name, ttl: int = DEFAULT_TTL) -> Lock:
        """Take name for ttl ms, retrying with backoff (retry_count times);
        raises LockBusy if it stays held."""
        return self._blocking().acquire(name, ttl)

    def try_acquire(self, name: Name, ttl: int = DEFAULT_TTL) -> Optional[Lock]:
        """One attempt: the Lock, or None if it is held."""
        return self._blocking().try_acquire(name, ttl)

    def wait(self, name: Name, timeout: int, ttl: int = DEFAULT_TTL) -> Lock:
        """Wait up to timeout ms, woken by the release (FIFO); raises Timeout."""
        return self._blocking().wait(name, timeout, ttl)

    def is_locked(self, name: Name) -> bool:
        return self._blocking().is_locked(name)

    def inspect(self, name: Name) -> Holder:
        """Who holds name: a Holder (locked, pttl_ms, fence, acquired_at, pid,
        waiters, host, label, token)."""
        return self._blocking().inspect(name)

    def release_token(self, name: Name, token: str) -> None:
        """Release name if it carries token (a lock taken elsewhere, e.g. by
        `dlock acquire`); raises NotHeld if it does not."""
        self._blocking().release_token(name, token)

    def extend_token(self, name: Name, token: str, ttl: int) -> None:
        self._blocking().extend_token(name, token, ttl)

    def ping(self) -> None:
        """Connect to and PING every server now."""
        self._blocking().ping()

    def lock(self, name: Name, ttl: int = DEFAULT_TTL, timeout: Optional[int] = None, *,
             auto_extend: bool = False, interval: int = 0,
             on_lost: Optional[OnLost] = None) -> "LockContext":
        """A context manager for `with` and `async with`: wait up to timeout
        ms (None: without limit) for name, hold it with a lease of ttl ms
        (kept alive every interval ms with auto_extend, or when on_lost is
        given), release it at the end."""
        return LockContext(self, name, ttl, timeout, auto_extend, interval, on_lost)

    # ---- async API ----

    def _async_client(self):
        with self._mu:
            if self._aclient is None:
                self._aclient = _dlock.Client(self._url, **self._options)
            return self._aclient

    @property
    def fd(self) -> int:
        """The engine's file descriptor (an epoll set), for an event loop of
        your own; the asyncio support watches each socket instead, and while
        it does this descriptor reports nothing."""
        return self._async_client()._fd()

    def _driver(self):
        loop = asyncio.get_running_loop()
        d = self._driver_obj
        if d is None or d.loop is not loop:
            if d is not None:
                if d.loop.is_running():
                    raise RuntimeError("this Client's async API is in use by another running "
                                       "event loop: make a Client per loop")
                d.detach()
            d = self._driver_obj = Driver(self._async_client(), loop)
        return d

    async def acquire_async(self, name: Name, ttl: int = DEFAULT_TTL) -> Lock:
        d = self._driver()
        return await d.run(lambda cb: d.client._acquire_async(name, ttl, cb), "acquire")

    async def try_acquire_async(self, name: Name, ttl: int = DEFAULT_TTL) -> Optional[Lock]:
        d = self._driver()
        return await d.run(lambda cb: d.client._try_acquire_async(name, ttl, cb), "try")

    async def wait_async(self, name: Name, timeout: int, ttl: int = DEFAULT_TTL) -> Lock:
        d = self._driver()
        return await d.run(lambda cb: d.client._wait_async(name, timeout, ttl, cb), "wait")

    async def inspect_async(self, name: Name) -> Holder:
        d = self._driver()
        return await d.run(lambda cb: d.client._inspect_async(name, cb), "inspect")

    async def is_locked_async(self, name: Name) -> bool:
        return (await self.inspect_async(name)).locked

    # ---- life cycle ----

    def close(self) -> None:
        """Stop driving the engine from the event loop (async operations still
        in flight then never complete: await or cancel them first).
        Connections close when the last Lock acquired through them is gone."""
        d, self._driver_obj = self._driver_obj, None
        if d is not None:
            d.detach()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc):
        self.close()
