"""asyncio: ``AsyncHandle``, a Handle whose operations, reads and batches
are awaited.

One rtnetlink socket per handle, registered with the event loop
(``loop.add_reader``): a call encodes its requests with the same encoders
as ``Handle``, sends them, and awaits a future that the reader callback
completes; the callback reads what the kernel queued without waiting and
hands each datagram to the call its sequence number belongs to.  Many
calls on one handle are in flight at once (each has its own sequence
numbers), no thread is started, and the operations are the very
definitions ``Handle`` runs (``pynetlink.ops``, driven as steps: see
``pynetlink.handle.run_steps``), with the same validation, undo and errors.

What the loop waits for.  rtnetlink does a request's work inside the
``sendmsg`` that carries it, holding the RTNL lock: the send returns once
the kernel has handled it, and the answer is then already queued.  So the
loop never waits for an answer, but it does wait for each send: some
microseconds for an address or a route, about half a millisecond for a
veth pair, 10 to 60 ms to delete one (an RCU grace period), and — the
case to know — as long as another process holds RTNL (a namespace being
torn down, a big ``ip -batch``): one dump request was measured waiting
4.9 s for it on a busy machine.  Sends go out from one callback
(``_pump``) that sends for at most ``PUMP_SECONDS`` and then lets the
loop run, so the loop stalls for that and one send more, not for every call
queued; dumps are read one datagram per reader callback.  This is the
price of no thread per call; a program that must never stall for a busy
kernel runs its handle in a thread of its own.

Cancellation.  A call cancelled after its requests were sent may have been
applied by the kernel: cancelling stops the wait, not the kernel.  Its late
replies are matched by sequence number and dropped; the handle stays
usable.  A cancelled transaction (``on_error="rollback"``) undoes what it
applied, and may have applied, before the cancellation goes on, as a
``KeyboardInterrupt`` does in ``Handle.batch``.

Events.  ``async for event in h.events("link", timeout=5)`` reads a
``Subscription`` (``pynetlink.events``) whose socket the loop watches
(``wait_readable``); the subscription keeps link names through a sync
``Handle`` of its own in the same namespace, so its dumps never meet this
handle's replies.  ``await h.wait_for_link(...)``/``wait_for_address(...)``
wait as the sync ones do, on the same conditions.
"""
from __future__ import annotations

import asyncio
import errno as _errno
import os
from collections import deque
from typing import (TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Deque, Dict, List,
                    Optional, Sequence, Tuple, Union, cast)

from . import _validate as v
from . import netns as _netns
from ._core import (DUMP_RETRIES, EVENTS_RCVBUF, MIN_RCVBUF, RCVBUF, WINDOW, Datagrams, DumpParts,
                    Replies, Reply, Request, Socket, _exchange_error, send_dump, send_window,
                    socket_netns)
from .addresses import Address
from .batch import Batch, Result, _Run
from .errors import EventsLost, ExchangeError, NetlinkError, error_for
from .events import (WAIT_TIMEOUT, Condition, Event, Subscription, _seconds, address_condition,
                     kinds_of, link_condition)
from .handle import Dump, Exchange, Handle, Steps, T, op_steps, resume
from .links import Link
from .ops import Op, Operations, Reads

__all__ = ["AsyncHandle", "AsyncBatch"]

READS_PER_CALLBACK = 256    # datagrams the reader takes before it lets other callbacks run
PUMP_SECONDS = 0.002        # sends made one after another before the loop runs again


class _Call:
    """A window of requests, or a dump, in flight: what collects its
    replies, the future its caller awaits, when the kernel last answered."""
    __slots__ = ("seqs", "parts", "requests", "future", "seen", "timer")

    def __init__(self, seqs: range, parts: Union[Replies, DumpParts], requests: Sequence[Request],
                 loop: asyncio.AbstractEventLoop):
        self.seqs, self.parts, self.requests = seqs, parts, requests
        self.future: asyncio.Future = loop.create_future()
        self.seen = loop.time()
        self.timer: Optional[asyncio.TimerHandle] = None

    def outcome(self) -> Any:
        """What the caller gets once every reply has come."""
        if isinstance(self.parts, DumpParts):
            return self.parts.result(self.requests[0])
        return self.parts.replies()

    def lost(self, errno: int, why: str) -> NetlinkError:
        """The error of this call when the exchange itself failed."""
        if isinstance(self.parts, DumpParts):
            return self.requests[0].error(errno, detail=f"the dump did not complete: {why}")
        known = self.parts.replies()
        first = self.requests[next((i for i, r in enumerate(known) if r is None), 0)]
        return error_for(errno, first.operation, first.arguments, first.interface,
                         detail=why, cls=ExchangeError, replies=known)


class AsyncSocket:
    """``Socket.exchange`` and ``Socket.dump`` as coroutines, on the
    socket ``sock`` (made non-blocking), for the event loop that first
    uses it.  Requests in flight are at most ``WINDOW`` (as a Handle's
    exchange), so their replies fit the receive buffer; dumps run one at a
    time (the kernel runs one per socket)."""

    def __init__(self, sock: Socket):
        self.sock = sock
        os.set_blocking(sock.fd, False)
        self.timeout = sock.timeout_ms / 1000
        self._datagrams = Datagrams()
        self._calls: Dict[int, _Call] = {}          # sequence number -> its call
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._inflight = 0                          # requests sent and not answered
        self._room: Deque[Tuple[int, asyncio.Future]] = deque()
        self._sends: Deque[Tuple[Sequence[Request], int, asyncio.Future]] = deque()
        self._dumping: Optional[_Call] = None
        self._overflowed: List[_Call] = []          # in flight when the kernel dropped replies

    # -- the loop ----------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop, which the socket's reader is registered with."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("an AsyncHandle is used by one event loop only")
            self._calls, self._dumping, self._inflight = {}, None, 0
            self._room.clear()
            self._sends.clear()
            loop.add_reader(self.sock.fd, self._readable)
            self._loop = loop
        return loop

    def close(self) -> None:
        """Stop reading, close the socket, fail every call in flight
        (EBADF); calls waiting to send fail as on a closed Handle."""
        loop, live = self._loop, self._loop is not None and not self._loop.is_closed()
        if live and self.sock.fd >= 0:
            assert loop is not None
            loop.remove_reader(self.sock.fd)
        self.sock.close()
        if live:
            self._fail_all(_errno.EBADF, "the netlink handle was closed")
        self._calls = {}                # a closed loop's calls: nobody waits for them

    def _readable(self) -> None:
        """The reader callback: take what is queued, without waiting."""
        for _ in range(READS_PER_CALLBACK):
            try:
                length = self._datagrams.read(self.sock.fd)
            except NetlinkError as e:
                if e.errno != _errno.ENOBUFS:
                    self._fail_all(e.errno or _errno.EIO, "the socket failed")
                    return
                self._overflowed = [c for c in set(self._calls.values())
                                    if isinstance(c.parts, Replies)]
                continue                    # read what was queued, then see what is missing
            if not length:
                break
            if self._take(length):
                return                      # a part of a dump: let the loop run, it calls again
        else:
            return                          # more queued: the loop calls again
        lost, self._overflowed = self._overflowed, []
        for call in lost:
            if not call.future.done():
                self._end(call, error=call.lost(_errno.ENOBUFS, self.sock._why_lost(_errno.ENOBUFS)))

    def _take(self, length: int) -> bool:
        """Hand the datagram just read to the call it answers (a late
        reply to a call cancelled or ended is dropped); True if it was a
        part of a dump (up to 32 KiB of them, decoded: a dump yields to the
        loop after each)."""
        call = self._calls.get(self._datagrams.sequence(length) or 0)
        if call is None:
            return False
        assert self._loop is not None
        call.seen = self._loop.time()
        try:
            if not call.parts.feed(self._datagrams, length):
                return call is self._dumping
        except NetlinkError as e:          # the answer is lost: so is the call
            self._end(call, error=call.lost(e.errno or _errno.EIO,
                                            e.detail or "the answer could not be read"))
            return False
        self._complete(call)
        return False

    def _complete(self, call: _Call) -> None:
        """End ``call``, every reply in: with its outcome, or the kernel's
        refusal of a dump."""
        try:
            outcome = call.outcome()
        except NetlinkError as e:          # the kernel refused the dump
            self._end(call, error=e)
        else:
            self._end(call, outcome)

    def _fail_all(self, errno: int, why: str) -> None:
        for call in set(self._calls.values()):
            self._end(call, error=call.lost(errno, why))

    def _expire(self, call: _Call) -> None:
        """The timer of a call: fail it if the kernel has said nothing to
        it for ``timeout`` seconds (what is queued is read first)."""
        assert self._loop is not None
        self._readable()
        if call.future.done():
            return
        idle = self._loop.time() - call.seen
        if idle < self.timeout:
            call.timer = self._loop.call_later(self.timeout - idle, self._expire, call)
        else:
            self._end(call, error=call.lost(_errno.ETIMEDOUT, self.sock._why_lost(_errno.ETIMEDOUT)))

    def _start(self, call: _Call) -> _Call:
        assert self._loop is not None
        for seq in call.seqs:
            self._calls[seq] = call
        call.timer = self._loop.call_later(self.timeout, self._expire, call)
        return call

    def _end(self, call: _Call, result: Any = None, error: Optional[BaseException] = None) -> None:
        """Forget ``call`` (its late replies will be dropped) and complete it."""
        if self._calls.get(call.seqs[0]) is not call:
            return                          # ended already
        for seq in call.seqs:
            del self._calls[seq]
        if call.timer is not None:
            call.timer.cancel()
        if call is self._dumping:
            self._dumping = None
        else:
            self._release(len(call.seqs))
        if error is not None:
            call.future.set_exception(error)
        else:
            call.future.set_result(result)

    # -- room: at most WINDOW requests in flight ----------------------------------

    async def _make_room(self, count: int) -> None:
        if not self._room and self._inflight + count <= WINDOW:
            self._inflight += count
            return
        assert self._loop is not None
        granted = self._loop.create_future()
        self._room.append((count, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(count)        # granted, then cancelled: give it back
            raise

    def _release(self, count: int) -> None:
        self._inflight -= count
        while self._room and (self._room[0][1].done()
                              or self._inflight + self._room[0][0] <= WINDOW):
            wanted, granted = self._room.popleft()
            if not granted.done():
                self._inflight += wanted
                granted.set_result(None)

    # -- exchanges and dumps -------------------------------------------------------

    async def exchange(self, requests: Sequence[Request],
                       into: Optional[list] = None) -> List[Reply]:
        """As ``Socket.exchange``, awaited: the requests go out a window at a
        time, and one Reply each comes back, in order (appended to ``into``
        a window at a time).  ExchangeError (timeout, ENOBUFS...) as there;
        cancelled, what was sent may have been applied."""
        self.sock._check_usable(requests)
        loop = self._bind()
        replies: list = [] if into is None else into
        done, sent = len(replies), 0        # replies there before; requests sent
        while sent < len(requests):
            reserved = min(WINDOW, len(requests) - sent)
            await self._make_room(reserved)
            try:
                call = await self._send(requests[sent:], reserved, loop)
            except NetlinkError as e:
                if sent:
                    raise _exchange_error(e, replies[done:] + [None] * (len(requests) - sent),
                                          sent) from None
                raise
            sent += len(call.seqs)
            replies.extend(await self._answers(call, replies, done, len(requests)))
        return replies

    async def _send(self, requests: Sequence[Request], reserved: int,
                    loop: asyncio.AbstractEventLoop) -> _Call:
        """Queue a window of ``requests`` (``reserved`` of the room) for
        ``_pump`` to send; the call that collects its replies."""
        sent = loop.create_future()
        self._sends.append((requests, reserved, sent))
        if len(self._sends) == 1:
            loop.call_soon(self._pump)
        try:
            return await sent
        except asyncio.CancelledError:
            if not sent.done() or sent.cancelled():     # never sent: give its room back
                self._release(reserved)
            raise

    def _pump(self) -> None:
        """Send queued windows for up to ``PUMP_SECONDS``, then let the loop
        run before the next: the kernel does each request's work inside its
        send, so the loop stalls for that long and one send more at the
        most, never for every window queued."""
        assert self._loop is not None
        until = self._loop.time() + PUMP_SECONDS
        while self._sends:
            requests, reserved, sent = self._sends.popleft()
            if sent.done():
                continue                                # its caller was cancelled
            try:
                self.sock._check_usable(requests)       # closed while it waited?
                first, count = send_window(self.sock, requests)
            except BaseException as e:
                self._release(reserved)
                sent.set_exception(e)
                if not isinstance(e, Exception):
                    raise                               # KeyboardInterrupt...: the loop's to handle
                continue
            self._release(reserved - count)
            window = requests[:count]
            sent.set_result(self._start(_Call(range(first, first + count),
                                              Replies(window, first, count, self.sock.portid),
                                              window, self._loop)))
            if self._loop.time() >= until:
                break
        if self._sends:
            self._loop.call_soon(self._pump)

    async def _answers(self, call: _Call, replies: list, done: int, total: int) -> list:
        """The replies of one window; a lost one raises ExchangeError for the
        whole exchange, a cancelled one keeps in ``replies`` the answers read
        before the first still missing."""
        try:
            return await asyncio.shield(call.future)
        except ExchangeError as e:
            known = replies[done:] + e.replies
            raise _exchange_error(e, known + [None] * (total - len(known)),
                                  len(replies) - done + len(call.seqs)) from None
        except asyncio.CancelledError:
            got = cast(Replies, call.parts).replies()
            replies.extend(got[:next((i for i, r in enumerate(got) if r is None), len(got))])
            raise

    async def dump(self, request: Request) -> List[dict]:
        """As ``Socket.dump``, awaited: the raw items of the dump, each
        datagram of it decoded as it comes (other calls run meanwhile)."""
        self.sock._check_usable((request,))
        loop = self._bind()
        for _ in range(DUMP_RETRIES + 1):
            while self._dumping is not None:        # the kernel runs one dump per socket
                await asyncio.wait([self._dumping.future])
            self.sock._check_usable((request,))
            parts = send_dump(self.sock, request, self._datagrams.rcap)
            call = self._start(_Call(range(parts.seq, parts.seq + 1), parts, (request,), loop))
            self._dumping = call
            items, interrupted = await asyncio.shield(call.future)
            if not interrupted:
                return items
        raise request.error(_errno.EAGAIN, detail=f"the dump was interrupted {DUMP_RETRIES + 1} "
                            "times by concurrent changes")

    async def wait_readable(self, fd: int) -> None:
        """Return once ``fd`` polls readable (for an event subscription's
        socket, say), without a thread; cancellable."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)
        loop.add_reader(fd, readable)
        try:
            await ready
        finally:
            loop.remove_reader(fd)

    async def drive(self, steps: Steps[T]) -> T:
        """Run ``steps`` (see ``pynetlink.handle``) to their end on this
        socket; an exception (CancelledError...) is thrown into them where
        they wait, so a batch notes it and a transaction rolls back."""
        more, step = resume(steps, (True, None))
        while more:
            outcome: Tuple[bool, Any]
            try:
                outcome = True, await (self.dump(step.request) if isinstance(step, Dump)
                                       else self.exchange(step.requests, step.into))
            except BaseException as e:      # thrown into the steps, which decide
                outcome = False, e
            more, step = resume(steps, outcome)
        return step


class _Wanted(BaseException):
    """A read asked for a step not recorded yet (never seen by callers)."""

    def __init__(self, step: Union[Exchange, Dump]):
        super().__init__()
        self.step = step


class _Replay(Reads):
    """Runs a ``Reads`` method over a record of the steps it has already
    been answered: its ``_socket()`` answers from the record, and stops the
    method (``_Wanted``) at the first step not in it.  A read changes
    nothing, so running it again from the start is safe."""

    def __init__(self, record: list):
        self._record, self._next = record, 0

    def _socket(self) -> Socket:
        return cast(Socket, self)

    def exchange(self, requests: Sequence[Request], into: Optional[list] = None) -> list:
        return self._answer(Exchange(requests, into))

    def dump(self, request: Request) -> list:
        return self._answer(Dump(request))

    def _answer(self, step: Union[Exchange, Dump]) -> Any:
        if self._next == len(self._record):
            raise _Wanted(step)
        ok, value = self._record[self._next]
        self._next += 1
        if not ok:
            raise value
        return value


MAX_READ_STEPS = 16     # exchanges and dumps one read makes at most (list_routes: 3)


def _async_read(name: str) -> Callable[..., Awaitable[Any]]:
    """``Reads.<name>`` as a coroutine method of AsyncHandle."""
    method = getattr(Reads, name)

    async def read(self: "AsyncHandle", *args: Any, **kwargs: Any) -> Any:
        record: list = []
        for _ in range(MAX_READ_STEPS):
            try:
                return method(_Replay(record), *args, **kwargs)
            except _Wanted as wanted:
                step = wanted.step
            try:
                record.append((True, await self._sock.drive(_one(step))))
            except NetlinkError as e:
                record.append((False, e))
        raise RuntimeError(f"{name} made more than {MAX_READ_STEPS} exchanges")

    read.__name__ = read.__qualname__ = name
    read.__doc__ = f"Awaited: {method.__doc__}"
    return read


def _one(step: Union[Exchange, Dump]) -> Steps[Any]:
    return (yield step)


def _remaining(deadline: Optional[float]) -> Optional[float]:
    """Seconds until ``deadline`` (the running loop's time), None for none."""
    return None if deadline is None else deadline - asyncio.get_running_loop().time()


class AsyncHandle(Operations[Awaitable[None]]):
    """A ``Handle`` whose calls are awaited: ``await h.create_veth_pair(...)``,
    ``await h.list_links()``, ``async with h.batch("rollback") as b: ...``.

    ``netns`` and ``timeout`` (and ``rcvbuf``) as ``Handle``'s: the socket
    is made in that namespace; ``timeout`` bounds each wait with no answer
    from the kernel (ETIMEDOUT).  Every operation of ``Handle`` validates
    its arguments when called (ValueError/TypeError, nothing sent) and
    returns an awaitable; every read of ``Handle`` is a coroutine.  Errors
    are those of ``Handle``, same classes, same fields.  The handle belongs
    to the event loop that first awaits one of its calls; use it from that
    loop only, and ``close()`` it (or ``async with``).  See the module
    documentation for what a call costs the loop and what cancelling means.
    """

    def __init__(self, netns: Optional[_netns.Target] = None, *, timeout: float = 5.0,
                 rcvbuf: int = RCVBUF):
        self._handle = Handle(netns, timeout=timeout, rcvbuf=rcvbuf)
        self._sock = AsyncSocket(self._handle.socket)
        self._timeout = timeout             # for the handles of subscriptions

    def close(self) -> None:
        """Close the socket (idempotent); calls in flight fail with EBADF,
        later ones as on a closed Handle."""
        if not self._handle.closed:
            self._sock.close()

    @property
    def closed(self) -> bool:
        return self._handle.closed

    @property
    def timeout(self) -> Optional[float]:
        return self._handle.timeout

    def fileno(self) -> int:
        return self._handle.fileno()

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None and not self._handle.closed:
            sock.close()                    # its fd must leave the loop's selector with it

    async def __aenter__(self) -> "AsyncHandle":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._handle).replace("pynetlink.Handle", "pynetlink.aio.AsyncHandle")

    @property
    def socket(self) -> AsyncSocket:
        """The handle's socket: ``await socket.exchange(requests)`` and
        ``await socket.dump(request)`` are the ways requests reach the kernel."""
        return self._sock

    def _execute(self, op: Op) -> Awaitable[None]:
        return self._run(op)

    async def _run(self, op: Op) -> None:
        try:
            self._sock.sock.check_usable(op.operation, op.arguments, op.interface)
        except BaseException:
            op.close()
            raise
        await self._sock.drive(op_steps(op))

    def batch(self, on_error: str = "continue") -> "AsyncBatch":
        """As ``Handle.batch``: queue operations, then ``await b.run()`` or
        leave an ``async with`` block.  Cancelled, a transaction rolls back
        what it applied before the cancellation goes on."""
        return AsyncBatch(self, on_error)

    async def wait_readable(self, fd: int) -> None:
        """Return once ``fd`` polls readable, on the running loop."""
        await self._sock.wait_readable(fd)

    # -- events (issue 16) ---------------------------------------------------

    def events(self, *kinds: str, timeout: Optional[float] = None,
               rcvbuf: int = EVENTS_RCVBUF) -> AsyncIterator[Event]:
        """Subscribe now to the changes of ``kinds`` (as ``Handle.events``)
        and return an async iterator of them: ``async for event in
        h.events("link", timeout=5)``.  It ends ``timeout`` seconds after
        its first step (None: never); an ``EventsLost`` ends it too, after
        the events read before the loss: subscribe again, then
        resynchronise with a dump.  The subscription (its own socket, and
        a sync ``Handle`` of this handle's namespace target, which must
        still be valid, for the link names) is closed when the iteration
        ends, is cancelled, or is ``aclose()``d — after a ``break``, when
        the loop finalises the iterator (``aclose()`` it to close at once).
        Equivalent to: ``ip monitor link address route neigh``."""
        kinds_of(kinds)                     # bad arguments: refused before any socket is made
        seconds = _seconds(timeout)
        v.integer(rcvbuf, "rcvbuf", MIN_RCVBUF, 1 << 30)
        handle = self._sync_handle()
        try:
            sub = Subscription(handle, kinds, rcvbuf=rcvbuf, names={})   # names read awaited
        except BaseException:
            handle.close()
            raise
        return self._follow(handle, sub, seconds)

    def _sync_handle(self) -> Handle:
        """A Handle in this handle's namespace (its socket's: the fd or path
        it was made from may since name another, or be closed) for a
        subscription: its link-name dumps must not reach this handle's
        socket, whose replies the loop's reader takes."""
        ns = socket_netns(self.fileno(), "events")
        try:
            return Handle(None if ns < 0 else ns, timeout=self._timeout)
        finally:
            if ns >= 0:
                os.close(ns)

    async def _follow(self, handle: Handle, sub: Subscription,
                      timeout: Optional[float]) -> AsyncIterator[Event]:
        """The events of ``sub`` for ``timeout`` seconds; closes it and
        ``handle`` however it ends."""
        try:
            deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
            await self._names_for(sub)
            while True:
                try:
                    events = sub.read()
                except EventsLost as lost:
                    for event in lost.events:
                        yield event
                    lost.events = []
                    raise
                for event in events:
                    yield event
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(self.wait_readable(sub.fileno()), remaining)
                except asyncio.TimeoutError:
                    pass                    # one read more, as Subscription's iteration makes
        finally:
            sub.close()
            handle.close()

    async def wait_for_link(self, name: str, *, carrier: Optional[bool] = None,
                            up: Optional[bool] = None, exists: bool = True,
                            timeout: float = WAIT_TIMEOUT) -> Optional[Link]:
        """Awaited ``Handle.wait_for_link`` (same conditions, same errors)."""
        return await self._wait(link_condition(name, carrier, up, exists, timeout))

    async def wait_for_address(self, name: str, cidr: Union[str, v.IPInterface], *,
                               tentative: Optional[bool] = False, exists: bool = True,
                               timeout: float = WAIT_TIMEOUT) -> Optional[Address]:
        """Awaited ``Handle.wait_for_address`` (same conditions, same errors)."""
        return await self._wait(address_condition(name, cidr, tentative, exists, timeout))

    async def _wait(self, cond: Condition) -> Any:
        """``pynetlink.events._wait`` awaited: subscribe, read the state
        through this handle, follow the events until the condition holds."""
        async def read_state() -> Any:
            try:
                return cond.state(await getattr(self, cond.read)(*cond.args))
            except NetlinkError as e:
                if cond.absent(e):
                    return None
                raise

        deadline = asyncio.get_running_loop().time() + cond.timeout
        with self._sync_handle() as handle, \
                Subscription(handle, (cond.kind,), names={}) as sub:
            await self._names_for(sub)
            state = await read_state()
            held = cond.holds(state)
            while not held:
                remaining = _remaining(deadline)
                try:
                    await asyncio.wait_for(self.wait_readable(sub.fileno()),
                                           max(0.0, remaining or 0.0))
                except asyncio.TimeoutError:
                    raise cond.timed_out() from None
                try:
                    state, held = cond.until(state, sub.read())
                except EventsLost:
                    await self._names_for(sub)
                    state = await read_state()      # the resync: what is there now
                    held = cond.holds(state)
            return state

    async def _names_for(self, sub: Subscription) -> None:
        """The link names ``sub`` decodes with, read through this handle
        (awaited: the loop runs meanwhile) once it has subscribed, or after
        a loss — never with a blocking dump on the loop."""
        if sub.names_stale or sub.needs_names:
            sub.set_names({link.index: link.name for link in await self.list_links()})

    if TYPE_CHECKING:
        def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
            """The reads of ``Handle`` (``get_link``, ``list_links``...), awaited."""


for _name in [n for n in vars(Reads) if not n.startswith("_")]:
    setattr(AsyncHandle, _name, _async_read(_name))


class AsyncBatch(Batch):
    """``Batch`` on an AsyncHandle: queue as on a Batch, then ``await
    b.run()``, or ``async with h.batch(...) as b:`` (runs at the end of
    the block; BatchError for the first failure, as a Batch's ``with``)."""

    async def run(self) -> List[Result]:  # type: ignore[override]
        """As ``Batch.run``, awaited."""
        handle = cast(AsyncHandle, self._handle)
        return await handle._sock.drive(self._steps(_Run(handle, self._ops, self.on_error,
                                                         sync=False)))

    def __enter__(self) -> "Batch":
        raise TypeError("an AsyncBatch runs with `async with` or `await batch.run()`")

    async def __aenter__(self) -> "AsyncBatch":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._close()
            return
        self._raise_failure(await self.run())
