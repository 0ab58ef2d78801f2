"""The asyncio driver: libdlock's engine run by an asyncio event loop.

One _dlock.Client is given to the engine (the async API). The engine
names each socket it needs watched (dlock_client_set_socket_fn): the loop
watches it with add_reader / add_writer and, when it is ready, calls
_process_fd() for it; a loop timer (call_at) covers dlock_client_timeout()
and calls _process(). Both advance every operation and run their C
callbacks; the callbacks complete asyncio futures. No thread is started,
and nothing here blocks: a thousand waits are a thousand entries in the
engine, not threads.

Cancelling the future of an operation (task.cancel(), asyncio.wait_for's
timeout) cancels the operation in the engine (dlock_op_cancel): a cancelled
wait leaves the server's wait queue, and a lock that was granted anyway is
released in the background.
"""
import functools

from . import _dlock

_KINDS_NONE_ON_BUSY = ("try",)
_READABLE, _WRITABLE = 1, 2  # DLOCK_READABLE, DLOCK_WRITABLE


def _ignore(status, value, detail):
    pass


class Driver:
    """Drives one _dlock.Client's engine from one asyncio loop."""

    def __init__(self, cclient, loop):
        self.client = cclient
        self.loop = loop
        self._attached = False
        self._socks = {}  # fd -> the events the loop watches it for
        self._timer = None
        self._when = None

    # ---- the loop side ----

    def _attach(self):
        if self._attached:
            return
        # Only after a start succeeded: the engine exists by then.
        self._attached = True
        self.client.driver = self
        self.client._set_sockets(self._on_socket)
        self.client._set_notify(self._rearm)
        self._rearm()

    def _on_socket(self, fd, events):
        """The engine's word on one socket: watch it for events (0: stop,
        before the engine closes it)."""
        old = self._socks.pop(fd, 0)
        if events:
            self._socks[fd] = events
        if self.loop.is_closed():
            return
        for bit, add, remove in ((_READABLE, self.loop.add_reader, self.loop.remove_reader),
                                 (_WRITABLE, self.loop.add_writer, self.loop.remove_writer)):
            if events & bit and not old & bit:
                add(fd, self._run_fd, fd, bit)
            elif old & bit and not events & bit:
                remove(fd)

    def _run_fd(self, fd, events):
        self.client._process_fd(fd, events)
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
        if self._attached:
            self.client._set_notify(None)
            try:
                self.client._set_sockets(None)  # each socket: _on_socket(fd, 0)
            except (_dlock.DlockError, RuntimeError):
                pass  # a closed client has no sockets left
            for fd in list(self._socks):
                self._on_socket(fd, 0)
            if self.client.driver is self:
                self.client.driver = None
            self._attached = False

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
