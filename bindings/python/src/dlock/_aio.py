"""The asyncio driver: libdlock's engine run by an asyncio event loop.

One _dlock.Client is given to the engine (the async API). Its engine has
one file descriptor (an epoll set): the loop watches it with add_reader,
and a loop timer (call_at) covers dlock_client_timeout(). Both call
_process(), which advances every operation and runs their C callbacks; the
callbacks complete asyncio futures. No thread is started, and nothing here
blocks: a thousand waits are a thousand entries in the engine, not threads.

Cancelling the future of an operation (task.cancel(), asyncio.wait_for's
timeout) cancels the operation in the engine (dlock_op_cancel): a cancelled
wait leaves the server's wait queue, and a lock that was granted anyway is
released in the background.
"""
import functools

from . import _dlock

_KINDS_NONE_ON_BUSY = ("try",)


def _ignore(status, value, detail):
    pass


class Driver:
    """Drives one _dlock.Client's engine from one asyncio loop."""

    def __init__(self, cclient, loop):
        self.client = cclient
        self.loop = loop
        self._fd = None
        self._timer = None
        self._when = None

    # ---- the loop side ----

    def _attach(self):
        if self._fd is not None:
            return
        # Asked only after a start succeeded: the engine exists by then.
        self._fd = self.client._fd()
        self.client.driver = self
        self.loop.add_reader(self._fd, self._run)
        self.client._set_notify(self._rearm)
        self._rearm()

    def _run(self):
        self.client._process()
        self._rearm()

    def _on_timer(self):
        self._timer = None
        self._run()

    def _rearm(self):
        """Make sure _process runs by the engine's next deadline."""
        ms = self.client._timeout()
        if ms < 0:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        when = self.loop.time() + ms / 1000.0
        if self._timer is not None:
            if self._when <= when:
                return  # the armed timer comes first: it re-arms after
            self._timer.cancel()
        self._when = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def detach(self):
        """Stop watching (Client.close, or the client moved to another loop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd is not None:
            if not self.loop.is_closed():
                self.loop.remove_reader(self._fd)
            self.client._set_notify(None)
            if self.client.driver is self:
                self.client.driver = None
            self._fd = None

    # ---- operations ----

    def start(self, begin, kind):
        """Start an operation: begin(callback) -> op id. Returns its future."""
        fut = self.loop.create_future()
        op = begin(functools.partial(self._done, fut, kind))
        self._attach()
        fut.add_done_callback(functools.partial(self._future_done, op))
        return fut

    async def run(self, begin, kind):
        """Start an operation and wait for it. If the awaiting task is
        cancelled after the engine finished, a lock it got is released."""
        fut = self.start(begin, kind)
        try:
            return await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.discard(fut.result())
            raise

    def discard(self, value):
        """Release a lock nobody will use (its waiter went away)."""
        if isinstance(value, _dlock.Lock):
            try:
                value._release_async(_ignore)
            except _dlock.DlockError:
                pass  # already released or lost: nothing to undo

    def _done(self, fut, kind, status, value, detail):
        # Runs inside _process (a C callback): complete the future, nothing
        # more; what awaits it runs later, from the loop.
        if fut.cancelled():
            self.discard(value)
            return
        if status == _dlock.OK:
            fut.set_result(value)
        elif status == _dlock.EBUSY and kind in _KINDS_NONE_ON_BUSY:
            fut.set_result(None)
        else:
            fut.set_exception(_dlock.error(status, detail))

    def _future_done(self, op, fut):
        if fut.cancelled():
            # False: it had finished; _done sees the cancelled future and
            # releases what it got.
            self.client._cancel(op)
