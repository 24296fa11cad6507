"""``Handle``: one rtnetlink socket bound to one network namespace, with one
method per operation.  The module-level functions of ``pynetlink`` use a
per-thread default handle (see ``default_handle``)."""
from __future__ import annotations

import os
import threading
from typing import (TYPE_CHECKING, Any, Generator, NamedTuple, Optional, Sequence, Tuple, TypeVar,
                    Union, cast)

from . import netns as _netns
from . import _validate as v
from ._combine import CombiningSocket
from ._core import MIN_RCVBUF, RCVBUF, Request, Socket
from .events import EventsMixin
from .ops import Op, Operations, Reads, failure, indexes

if TYPE_CHECKING:
    from .batch import Batch


class Handle(Operations[None], Reads, EventsMixin):
    """An rtnetlink socket in one network namespace.

    ``netns`` is None (the calling thread's current namespace), a path
    (``/run/netns/NAME``, ``/proc/PID/ns/net``) or an open fd (kept open by
    the caller).  The socket for another namespace is made without fork and
    without moving the process: the calling thread enters the namespace for
    the ``socket()`` call only.  ``timeout`` (seconds, default 5) bounds
    each wait with nothing to read once the kernel has handled a request:
    rtnetlink answers inside the send itself, so the time a send spends
    blocked in the kernel (behind the RTNL lock another process holds, say)
    never counts, and a busy kernel cannot trip it; only a kernel that
    stops answering does (ETIMEDOUT).  ``rcvbuf``: the socket's receive buffer in bytes (default
    1 MiB, room for a window of replies; at least 8 KiB, ``MIN_RCVBUF``,
    which holds a link's reply and its ACK, so every single call works; a
    batch's window of replies may overflow a buffer that small, and if the
    kernel ever overflows it, the operations whose answers it dropped are
    reported, never guessed).
    A Handle is a context manager and may be shared by threads.  With
    ``combine=True`` the requests of threads that use it at the same time
    go to the kernel together, in one pipelined exchange (each thread gets
    its own replies, exactly as alone): one round trip per burst, not one
    per thread.
    """

    def __init__(self, netns: Optional[_netns.Target] = None, *, timeout: float = 5.0,
                 rcvbuf: int = RCVBUF, combine: bool = False):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError("timeout must be a number of seconds")
        if not 0.001 <= timeout <= 3600:
            raise ValueError(f"timeout {timeout} is out of range [0.001, 3600] seconds")
        v.integer(rcvbuf, "rcvbuf", MIN_RCVBUF, 1 << 30)
        if not isinstance(combine, bool):
            raise TypeError("combine must be True or False")
        kind = CombiningSocket if combine else Socket
        self._sock: Optional[Socket] = None
        if netns is None:
            self._sock = kind(-1, timeout, rcvbuf=rcvbuf)
        else:
            with _netns.netns_fd(netns) as fd:
                try:
                    self._sock = kind(fd, timeout, rcvbuf=rcvbuf)
                except FileNotFoundError:    # the thread could not name its own namespace
                    raise _netns.no_proc() from None

    # -- life cycle ----------------------------------------------------------

    def close(self) -> None:
        """Close the socket (idempotent: closing a closed Handle does
        nothing).  Every operation on a closed Handle raises NetlinkError
        (EBADF) naming the operation and its arguments, with ``detail``
        saying the handle is closed; nothing reaches the kernel."""
        if self._sock is not None:
            self._sock.close()

    @property
    def timeout(self) -> Optional[float]:
        """Seconds each wait for the kernel may last; None once the Handle
        is closed (it waits for nothing any more)."""
        return None if self.closed else self.socket.timeout_ms / 1000

    @property
    def closed(self) -> bool:
        """True once ``close()`` has run (a Handle made before ``fork()`` is
        not closed in the child, but refuses every operation there)."""
        return self._sock is None or self._sock.fd < 0

    def fileno(self) -> int:
        """The socket's file descriptor; -1 once the Handle is closed (as
        ``socket.socket.fileno()``)."""
        return self._sock.fd if self._sock else -1

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()

    def __repr__(self) -> str:
        """``<pynetlink.Handle fd=N>``; ``<pynetlink.Handle closed>``; in a
        child of fork(), ``<pynetlink.Handle fd=N made before fork()>``."""
        if self.closed:
            return "<pynetlink.Handle closed>"
        forked = " made before fork()" if self.socket.unusable() else ""
        return f"<pynetlink.Handle fd={self.fileno()}{forked}>"

    # -- running operations ----------------------------------------------------------

    @property
    def socket(self) -> Socket:
        """The handle's socket: ``socket.exchange(requests)`` is the one way
        requests reach the kernel (pipelined, one Reply each, in order)."""
        assert self._sock is not None
        return self._sock

    def _socket(self) -> Socket:
        return self.socket

    def _execute(self, op: Op) -> None:
        """Run one operation now (``op_steps`` on this handle's socket).  A
        closed Handle (or one made before fork()) refuses it as a whole."""
        try:
            self.socket.check_usable(op.operation, op.arguments, op.interface)
        except BaseException:
            op.close()
            raise
        run_steps(self.socket, op_steps(op))

    def batch(self, on_error: str = "continue") -> "Batch":
        """Queue operations and run them pipelined: as few sends as possible,
        one result each.  ``on_error`` is "continue" (every operation is
        tried), "stop" (nothing after the first failure is applied) or
        "rollback" (a transaction: if any fails, what was applied is undone
        in reverse order).  See ``pynetlink.batch``."""
        from .batch import Batch
        return Batch(self, on_error)


# -- steps: what an operation or a batch exchanges, apart from how ------------------
#
# An operation (``op_steps``) and a batch (``Batch``) are generators that
# yield what they need from the kernel — ``Exchange(requests)`` (they are
# sent the list of Replies) or ``Dump(request)`` (sent the raw items) —
# and are thrown the exception when it fails.  ``run_steps`` drives them
# with the blocking calls of a ``Socket`` (Handle, Batch); ``pynetlink.aio``
# drives the same generators on an event loop.

class Exchange(NamedTuple):
    """Send ``requests``, get one Reply each (appended to ``into`` as they
    are read, if given): ``Socket.exchange``."""
    requests: Sequence[Request]
    into: Optional[list] = None


class Dump(NamedTuple):
    """Run the dump ``request``, get its raw items: ``Socket.dump``."""
    request: Request


T = TypeVar("T")
Steps = Generator[Union[Exchange, Dump], Any, T]


def resume(steps: Steps[Any], outcome: Tuple[bool, Any]) -> Tuple[bool, Any]:
    """Resume ``steps`` with ``outcome``, (True, the result of the step it
    yielded) or (False, the exception it raised): (True, the next step),
    or (False, what the steps return) once they end.  A driver calls it
    first with (True, None)."""
    ok, value = outcome
    try:
        return True, steps.send(value) if ok else steps.throw(value)
    except StopIteration as end:
        return False, end.value


def run_steps(sock: Socket, steps: Steps[T]) -> T:
    """Drive ``steps`` to its end with ``sock``'s blocking calls: each
    yielded Exchange or Dump is run and its result sent in; an exception
    (ExchangeError, KeyboardInterrupt...) is thrown in where it yielded."""
    try:
        step = next(steps)
        while True:
            try:
                result = (sock.exchange(step.requests, step.into) if isinstance(step, Exchange)
                          else sock.dump(step.request))
            except BaseException as e:  # thrown into the steps, which decide
                step = steps.throw(e)
            else:
                step = steps.send(result)
    except StopIteration as end:
        return end.value


class _Lookups(NamedTuple):
    """An op's lookups, made once: ``indexes`` asks for each by name."""
    requests: dict

    def lookup(self, name: str) -> Request:
        return self.requests[name]


def op_steps(op: Op) -> Steps[None]:
    """One operation: its ifindex lookups (one pipelined exchange), then its
    request, then the messages that finish it; the kernel's refusal is
    raised.  Closes the op's fds when done."""
    try:
        found: dict = {}
        if op.needs:
            made = _Lookups({name: op.lookup(name) for name in op.needs})
            replies = yield Exchange(list(made.requests.values()))
            found = indexes(lambda asked: replies, cast(Op, made), op.needs)
        request = op.built(found)
        [reply] = yield Exchange((request,))
        error = failure(request, reply)
        if error is not None:
            raise error
        if op.after:
            yield from finish_steps(op, found)
    finally:
        op.close()


def finish_steps(op: Op, found: dict) -> Steps[None]:
    """Send the messages that finish ``op``, now that its own request
    has succeeded.  If one fails, a creation is undone (nothing
    half-made stays; best effort, the finishing message's error is what
    the caller gets); a change is left as far as it got, as a failed
    change of several requests is."""
    requests = op.finishing()
    for request, reply in zip(requests, (yield Exchange(requests))):
        error = failure(request, reply) if op.finish_failure(reply) else None
        if error is not None:
            undo = op.undo(None, found) if op.undo and not op.changes else None
            if undo is not None:
                yield Exchange([op.request(e) for e in (undo if isinstance(undo, list) else [undo])])
            raise error


_local = threading.local()


def default_handle() -> Handle:
    """The calling thread's handle for its current network namespace.

    Made on first use; made again when the thread has since moved to another
    namespace (e.g. by ``netns.enter``) or the process has forked, so the
    module-level functions always act where the calling thread is, as
    libcontainer v1.2.0's did.
    """
    key = (_netns.current_id(), os.getpid())
    handle = getattr(_local, "handle", None)
    if handle is None or _local.key != key or handle.closed:
        if handle is not None:
            handle.close()
        handle = _local.handle = Handle()
        _local.key = key
    return handle


class DefaultHandle(Operations[None], Reads):
    """The module-level functions of ``pynetlink``: each operation runs on
    the calling thread's ``default_handle()``, in the namespace the thread
    is in when it calls."""

    def _execute(self, op: Op) -> None:
        default_handle()._execute(op)

    def _socket(self) -> Socket:
        return default_handle().socket


default: DefaultHandle = DefaultHandle()
