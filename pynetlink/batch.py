"""Pipelined batches: many operations, few sends, one result each.

``Handle.batch(on_error)`` returns a ``Batch`` with the Handle's operation
methods; each call validates its arguments at once (``ValueError`` /
``TypeError``, nothing queued) and queues the operation.  ``run()`` — or
leaving the ``with`` block — sends them: as many per send as the window
allows, one ACK read per operation, so a batch of any size never overflows
the socket.  Operations that need an ifindex (addresses, routes, renames,
masters) get it from one pipelined RTM_GETLINK, made after everything queued
before them has been applied, so they may name links made earlier in the
same batch.

``on_error``:

- ``"continue"``: every operation is tried; each result says how it went.
- ``"stop"``: operations are sent one at a time, and nothing after the first
  failure is sent (those are reported ``skipped``).
- ``"rollback"``: a transaction.  Before each operation that changes an
  existing link, the link is read in the same send; if any operation
  fails, every applied one is undone in reverse order (new link: deleted,
  new address or route: deleted, a change: the old value restored), so the
  system is left as it was found.  Deletions and namespace moves cannot be
  undone and are refused in a transaction.
"""
from __future__ import annotations

import errno as _errno
from collections import namedtuple
from typing import List, Optional, Sequence

from . import ops
from .errors import BatchError, ExchangeError, NetlinkError, error_for
from ._core import Reply, Request
from .links import Link

__all__ = ["Batch", "Result", "OK", "FAILED", "SKIPPED", "UNKNOWN", "ROLLED_BACK",
           "ROLLBACK_FAILED"]

OK, FAILED, SKIPPED, UNKNOWN = "ok", "failed", "skipped", "unknown"
ROLLED_BACK, ROLLBACK_FAILED = "rolled_back", "rollback_failed"
MODES = ("continue", "stop", "rollback")
FLUSH_AT = 4096                 # queued requests sent at the latest after this many


class Result(namedtuple("Result", "operation arguments interface status errno ext_ack",
                        defaults=(OK, 0, ""))):
    """The outcome of one queued operation.

    ``status``: ``ok``; ``failed`` (``errno``/``ext_ack`` say why);
    ``skipped`` (not sent, after a failure in "stop" or "rollback" mode,
    or after the exchange itself failed); ``unknown`` (sent, but the
    exchange failed before its answer came: a timeout, or the kernel
    dropped replies (ENOBUFS) — ``errno`` says which; it may or may not
    have been applied);
    ``rolled_back`` (applied, then undone); ``rollback_failed`` (applied,
    and its undo failed: ``errno``/``ext_ack`` are the undo's).
    """
    __slots__ = ()

    @property
    def ok(self) -> bool:
        return self.status == OK

    def exception(self) -> Optional[NetlinkError]:
        """The error as the single call would have raised it, or None."""
        if not self.errno:
            return None
        return error_for(self.errno, self.operation, self.arguments, self.interface, self.ext_ack)


class Batch(ops.Operations["Batch"]):
    """Operations queued on one Handle; see the module documentation.
    Each operation method takes the same arguments as ``Handle``'s and
    returns the batch, so calls chain."""

    def __init__(self, handle, on_error: str = "continue"):
        if on_error not in MODES:
            raise ValueError(f"on_error must be one of {', '.join(MODES)}, not {on_error!r}")
        self._handle = handle
        self.on_error = on_error
        self._ops: List[ops.Op] = []
        self._spent = False                 # ran, or abandoned: its fds are closed
        self.results: Optional[List[Result]] = None

    def __len__(self) -> int:
        return len(self._ops)

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Run the batch when the block ends normally; if any operation
        failed, raise ``BatchError`` (the first failure, with ``results``)."""
        if exc_type is not None:
            self._close()
            return
        results = self.run()
        failure = next((r for r in results if r.status in (FAILED, UNKNOWN)), None)
        if failure is not None:
            raise error_for(failure.errno, failure.operation, failure.arguments,
                            failure.interface, failure.ext_ack, cls=BatchError, results=results)

    # -- queueing: the Handle's operations ------------------------------------------

    def _execute(self, op: ops.Op) -> "Batch":
        """Queue ``op`` (validated already); refused here if the batch has
        run, or if it is a transaction and ``op`` cannot be undone."""
        if self._spent:
            op.close()
            raise RuntimeError("this batch has already run or was abandoned")
        if self.on_error == "rollback" and op.irreversible:
            op.close()
            raise ValueError(f"{op.operation} cannot be part of a transaction: {op.irreversible}")
        self._ops.append(op)
        return self

    # -- running -------------------------------------------------------------------

    def _close(self) -> None:
        self._spent = True
        for op in self._ops:
            op.close()

    def run(self) -> List[Result]:
        """Send every queued operation; one Result each, in queue order.
        A batch runs once; one abandoned by an exception cannot run."""
        if self._spent:
            raise RuntimeError("this batch has already run or was abandoned")
        run = _Run(self._handle, self._ops, self.on_error)
        try:
            run.go()
        finally:
            self._close()
        self.results = run.results()
        return self.results


class _Run:
    """One execution of a batch: the state that lives only while it runs."""

    def __init__(self, handle, queued: List[ops.Op], mode: str):
        self.handle, self.ops, self.mode = handle, queued, mode
        self.done: List[Optional[Result]] = [None] * len(queued)
        self.known: dict = {}               # name -> ifindex, valid at this point of the batch
        self.pending: list = []             # (kind, op index, request) not sent yet
        self.before: dict = {}              # op index -> the Link it changed, as it was
        self.built_with: dict = {}          # op index -> the indexes its request used
        self.applied: List[int] = []        # op indexes the kernel applied, in order
        self.failed = False
        self.lost: Optional[ExchangeError] = None   # the exchange itself failed

    def go(self) -> None:
        for i, op in enumerate(self.ops):
            if self.lost or (self.failed and self.mode != "continue"):
                break
            missing = [name for name in op.needs if name not in self.known]
            if missing and not self.look_up(i, op, missing):
                continue
            indexes = {name: self.known[name] for name in op.needs}
            self.built_with[i] = indexes
            if self.mode == "rollback" and op.changes:
                self.pending.append(("read", i, op.read()))
            self.pending.append(("op", i, op.built(indexes)))
            for name in op.forgets:
                self.known.pop(name, None)
            if self.mode == "stop" or len(self.pending) >= FLUSH_AT:
                self.flush()
        self.flush()
        if self.failed and self.mode == "rollback":
            self.roll_back()

    def look_up(self, i: int, op: ops.Op, names: list) -> bool:
        """Learn the indexes of ``names`` once what came before is applied:
        the RTM_GETLINKs ride in the same send as the queued requests, after
        them (the kernel handles one send in order)."""
        found = self.flush([op.lookup(n) for n in names])
        if self.lost or (self.failed and self.mode != "continue"):
            return False
        for name, reply in zip(names, found):
            if reply.errno:
                self.done[i] = Result(op.operation, op.arguments, name, FAILED, reply.errno, reply.ext_ack)
                self.failed = True
                return False
            self.known[name] = reply.link["index"]
        return True

    def flush(self, lookups: Sequence[Request] = ()) -> list:
        """Send the queued requests (then ``lookups``); record each outcome
        and return the replies to the lookups."""
        if self.lost:                               # the exchange failed: send nothing more
            self.pending = []
            return [None] * len(lookups)
        if not self.pending and not lookups:
            return []
        sent, self.pending = self.pending, []
        replies: List[Optional[Reply]]
        try:
            replies = list(self.handle.socket.exchange([r for _, _, r in sent] + list(lookups)))
        except ExchangeError as e:
            replies, self.lost = e.replies, e       # the batch stops here
        for n, ((kind, i, _), reply) in enumerate(zip(sent, replies)):
            op = self.ops[i]
            if reply is None:                       # never sent: stays None, reported skipped
                lost = self.lost
                assert lost is not None
                if kind == "op" and n < lost.sent:
                    self.done[i] = Result(op.operation, op.arguments, op.interface, UNKNOWN,
                                          lost.errno, lost.strerror)
                self.failed = True
            elif kind == "read":
                if not reply.errno:
                    self.before[i] = Link.from_raw(reply.link)
            elif reply.errno:
                self.done[i] = Result(op.operation, op.arguments, op.interface, FAILED,
                                      reply.errno, reply.ext_ack)
                self.failed = True
            else:
                self.done[i] = Result(op.operation, op.arguments, op.interface)
                self.applied.append(i)
        return replies[len(sent):]

    def mark(self, i: int, status: str, errno: int = 0, ext_ack: str = "") -> None:
        """Record what became of applied operation i."""
        done = self.done[i]
        assert done is not None
        self.done[i] = done._replace(status=status, errno=errno, ext_ack=ext_ack)

    def roll_back(self) -> None:
        """Undo every applied operation, last first, in one pipelined exchange."""
        undos = []
        for i in reversed(self.applied):
            op = self.ops[i]
            if op.changes and i not in self.before:     # could not read it: cannot restore it
                self.mark(i, ROLLBACK_FAILED, _errno.ENODATA,
                          "its state before the change could not be read")
                continue
            encode = op.undo(self.before.get(i), self.built_with[i]) if op.undo else None
            if encode is not None:
                undos.append((i, op.request(encode)))
            else:
                self.mark(i, ROLLED_BACK)
        if not undos:
            return
        try:
            replies = self.handle.socket.exchange([r for _, r in undos])
        except NetlinkError as e:                   # the undo exchange itself failed
            known = e.replies if isinstance(e, ExchangeError) else [None] * len(undos)
            replies = [reply if reply is not None else Reply(e.errno, f"undo lost: {e.strerror}", None)
                       for reply in known]
        for (i, _), reply in zip(undos, replies):
            self.mark(i, ROLLBACK_FAILED if reply.errno else ROLLED_BACK, reply.errno,
                      reply.ext_ack)

    def results(self) -> List[Result]:
        return [r if r is not None else Result(op.operation, op.arguments, op.interface, SKIPPED)
                for op, r in zip(self.ops, self.done)]
