"""Pipelined batches: many operations, few sends, one result each.

``Handle.batch(on_error)`` returns a ``Batch`` with the Handle's operation
methods; each call validates its arguments at once (``ValueError`` /
``TypeError``, nothing queued) and queues the operation.  ``run()`` — or
leaving the ``with`` block — sends them: as many per send as the window
allows, one ACK read per operation, so a batch of any size never overflows
the socket.  Operations that need an ifindex (addresses, routes, renames,
masters) get it from one pipelined RTM_GETLINK, made after everything queued
before them has been applied, so they may name links made earlier in the
same batch.  An operation finished by a second message (``create_veth_pair``
with ``addr_gen_mode``) ends a send: its finishing message goes only once
its own request has succeeded.  A namespace given as a path (``peer_netns``) is opened once
per batch, however many operations name it, and closed when the batch has
run or is dropped.

``on_error``:

- ``"continue"``: every operation is tried; each result says how it went.
- ``"stop"``: operations are sent one at a time, and nothing after the first
  failure is sent (those are reported ``skipped``).
- ``"rollback"``: a transaction.  Before each operation that changes an
  existing link, the link is read in the same send; before a change that
  may make the kernel drop the link's addresses and routes (down, MTU,
  master, MAC address), those are recorded too (see ``pynetlink._restore``).
  If any operation fails, every applied one is undone in reverse order (new
  link: deleted, new address or route: deleted, a change: the old value
  restored, and the recorded addresses and routes put back), then the
  recorded state is compared with the kernel's: an operation is
  ``rolled_back`` only if what it changed is as it was.  An undo whose goal
  already holds (the route it deletes is gone) has succeeded.  Deletions
  and namespace moves cannot be undone and are refused when queued; a
  change whose dropped addresses or routes could not be put back (see
  ``pynetlink._restore``) fails, EOPNOTSUPP, before it is made.

Whatever stops a run — a failure, a lost exchange, or an exception such as
``KeyboardInterrupt`` from a signal handler — ``results`` says what became of
every operation (applied, failed, unknown, skipped; in a transaction, rolled
back), and an interrupted transaction undoes what it applied (and what it
may have applied) before the exception goes on.
"""
from __future__ import annotations

import errno as _errno
import os
from collections import namedtuple
from typing import Dict, List, Optional, Sequence

from . import _restore, addresses, netns, ops, routes
from ._core import AF_UNSPEC, Reply, Request
from .errors import BatchError, ExchangeError, NetlinkError, error_for
from .handle import Dump, Exchange, Steps, run_steps
from .links import Link

__all__ = ["Batch", "Result", "OK", "FAILED", "SKIPPED", "UNKNOWN", "ROLLED_BACK",
           "ROLLBACK_FAILED"]

OK, FAILED, SKIPPED, UNKNOWN = "ok", "failed", "skipped", "unknown"
ROLLED_BACK, ROLLBACK_FAILED = "rolled_back", "rollback_failed"
MODES = ("continue", "stop", "rollback")
FLUSH_AT = 4096                 # queued requests sent at the latest after this many


class Result(namedtuple("Result", "operation arguments interface status errno ext_ack detail",
                        defaults=(OK, 0, "", ""))):
    """The outcome of one queued operation.

    ``status``: ``ok``; ``failed`` (``errno``/``ext_ack`` say why);
    ``skipped`` (not sent, after a failure in "stop" or "rollback" mode,
    or after the exchange itself failed); ``unknown`` (sent, but the
    exchange failed or was interrupted before its answer came: a timeout,
    the kernel dropped replies (ENOBUFS), an exception such as
    KeyboardInterrupt (EINTR) — ``errno`` says which; it may or may not have
    been applied);
    ``rolled_back`` (applied, or perhaps applied, then undone: what it
    changed is as it was); ``rollback_failed`` (applied, and its undo failed
    or what it changed is not as it was: ``errno``/``ext_ack`` are the
    undo's).  ``ext_ack`` is only ever the kernel's own text; ``detail`` is
    pynetlink's explanation, when it has one.
    """
    __slots__ = ()

    @property
    def ok(self) -> bool:
        return self.status == OK

    def exception(self) -> Optional[NetlinkError]:
        """The error as the single call would have raised it, or None."""
        if not self.errno:
            return None
        return error_for(self.errno, self.operation, self.arguments, self.interface, self.ext_ack,
                         detail=self.detail)


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
        self._netns: Dict[str, int] = {}    # path -> fd, opened once for the batch
        self.results: Optional[List[Result]] = None

    def __del__(self) -> None:
        if not getattr(self, "_spent", True):
            self._close()

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
        self._raise_failure(self.run())

    @staticmethod
    def _raise_failure(results: List[Result]) -> None:
        """``BatchError`` for the first failure of ``results``, if any."""
        failure = next((r for r in results if r.status in (FAILED, UNKNOWN)), None)
        if failure is not None:
            raise error_for(failure.errno, failure.operation, failure.arguments,
                            failure.interface, failure.ext_ack, cls=BatchError, results=results,
                            detail=failure.detail)

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

    def _netns_fd(self, target: netns.Target, fds: List[int]) -> int:
        """A namespace path is opened once for the whole batch (closed with
        it); an fd is the caller's."""
        if self._spent:
            raise RuntimeError("this batch has already run or was abandoned")
        path = netns.check_target(target)
        if isinstance(path, int):
            return super()._netns_fd(path, fds)
        key = os.fsdecode(path)
        if key not in self._netns:
            self._netns[key] = netns.open_netns(path)
        return self._netns[key]

    # -- running -------------------------------------------------------------------

    def _close(self) -> None:
        self._spent = True
        for op in self._ops:
            op.close()
        while self._netns:
            os.close(self._netns.popitem()[1])

    def run(self) -> List[Result]:
        """Send every queued operation; one Result each, in queue order.
        A batch runs once; one abandoned by an exception cannot run.  If
        an exception (KeyboardInterrupt...) stops it, ``results`` still
        says what became of each operation — and a transaction has undone
        what it applied — before the exception goes on."""
        return run_steps(self._handle.socket, self._steps(_Run(self._handle, self._ops,
                                                               self.on_error)))

    def _steps(self, run: "_Run") -> Steps[List[Result]]:
        """The run of this batch as steps (see ``pynetlink.handle``): the
        synchronous ``run`` and ``pynetlink.aio`` drive the same ones."""
        if self._spent:
            raise RuntimeError("this batch has already run or was abandoned")
        try:
            try:
                yield from run.go()
            except BaseException:
                run.interrupted()
                raise
            finally:
                if run.failed and self.on_error == "rollback":
                    yield from run.roll_back()
        finally:
            self.results = run.results()
            self._close()
        return self.results


class _Run:
    """One execution of a batch: the state that lives only while it runs.
    Its methods that talk to the kernel are steps (see ``pynetlink.handle``),
    but for ``undo``, which a synchronous run (``sync``) runs at once."""

    def __init__(self, handle, queued: List[ops.Op], mode: str, sync: bool = True):
        self.handle, self.ops, self.mode, self.sync = handle, queued, mode, sync
        self.done: List[Optional[Result]] = [None] * len(queued)
        self.known: dict = {}               # name -> ifindex, valid at this point of the batch
        self.pending: list = []             # (kind, op index, request) not sent yet
        self.before: dict = {}              # op index -> the Link it changed, as it was
        self.snapshots: dict = {}           # op index -> what the kernel may drop with its change
        self.built_with: dict = {}          # op index -> the indexes its request used
        self.inflight: list = []            # (kind, op index, request) of the exchange under way
        self.got: list = []                 # ... the replies to them read so far
        self.failed = False
        self.lost: Optional[ExchangeError] = None   # the exchange itself failed
        self.unfinished: dict = {}          # op index -> its failure: applied, not finished

    def stopped(self) -> bool:
        return bool(self.lost) or (self.failed and self.mode != "continue")

    def go(self) -> Steps[None]:
        for i, op in enumerate(self.ops):
            if self.stopped():
                break
            missing = [name for name in op.needs if name not in self.known]
            if missing and not (yield from self.look_up(i, op, missing)):
                continue
            indexes = {name: self.known[name] for name in op.needs}
            self.built_with[i] = indexes
            if self.mode == "rollback" and op.changes:
                self.pending.append(("read", i, op.read()))
                if op.flushes and not (yield from self.record(i, op)):
                    continue
            self.pending.append(("op", i, op.built(indexes)))
            if op.after:                    # only once it is applied: learn that first
                yield from self.flush()
                done = self.done[i]
                if done is not None and done.status == OK:
                    self.pending.extend(("after", i, r) for r in op.finishing())
            for name in op.forgets:
                self.known.pop(name, None)
            if self.mode == "stop" or len(self.pending) >= FLUSH_AT:
                yield from self.flush()
        yield from self.flush()

    def look_up(self, i: int, op: ops.Op, names: list) -> Steps[bool]:
        """Learn the indexes of ``names`` once what came before is applied:
        the RTM_GETLINKs ride in the same send as the queued requests, after
        them (the kernel handles one send in order)."""
        found = yield from self.flush([op.lookup(n) for n in names])
        if self.stopped():
            return False
        for name, reply in zip(names, found):
            if reply.errno:
                self.done[i] = Result(op.operation, op.arguments, name, FAILED, reply.errno, reply.ext_ack)
                self.failed = True
                return False
            self.known[name] = reply.link["index"]
        return True

    def record(self, i: int, op: ops.Op) -> Steps[bool]:
        """Before a change that may make the kernel drop the link's
        addresses and routes: apply what is queued (and read the link),
        then dump them.  False (op i failed, EOPNOTSUPP) if some could not
        be put back."""
        yield from self.flush()
        if self.stopped():
            return False
        link = self.before.get(i)
        if link is None:                    # the read failed: so will the op, and say why
            return True
        try:
            addrs, rts = yield from self.dump_addresses_and_routes(op)
        except NetlinkError as e:
            self.fail(i, e.errno or _errno.EIO, e.ext_ack, f"could not read the addresses and "
                      f"routes of {link.name} to restore them if the transaction rolls back")
            return False
        snap = _restore.record(link.index, link.name, addrs, rts)
        if snap.unrestorable:
            self.fail(i, _errno.EOPNOTSUPP, "", "a rollback could not put back what the kernel "
                      f"drops with this change: {'; '.join(snap.unrestorable)}; "
                      "run it outside a transaction")
            return False
        self.snapshots[i] = snap
        return True

    def dump_addresses_and_routes(self, op: ops.Op) -> Steps[tuple]:
        """Every address and every route of the namespace (raw), as ``op``."""
        found = []
        for encode in (addresses.dump(AF_UNSPEC), routes.dump(AF_UNSPEC)):
            found.append((yield Dump(Request(op.operation, op.arguments, op.changes, encode,
                                             reads=True))))
        return tuple(found)

    def fail(self, i: int, errno: int, ext_ack: str, detail: str) -> None:
        op = self.ops[i]
        self.done[i] = Result(op.operation, op.arguments, op.interface, FAILED, errno, ext_ack,
                              detail)
        self.failed = True

    def flush(self, lookups: Sequence[Request] = ()) -> Steps[list]:
        """Send the queued requests (then ``lookups``); record each outcome
        and return the replies to the lookups."""
        if self.lost:                               # the exchange failed: send nothing more
            self.pending = []
            return [None] * len(lookups)
        if not self.pending and not lookups:
            return []
        sent, self.pending = self.pending, []
        self.inflight, self.got = sent, []
        try:
            yield Exchange([r for _, _, r in sent] + list(lookups), into=self.got)
        except ExchangeError as e:
            self.got, self.lost = e.replies, e      # the batch stops here
        self.note(sent, self.got)
        self.inflight = []
        return self.got[len(sent):]

    def note(self, sent: list, replies: Sequence[Optional[Reply]]) -> None:
        """Record the outcome of each of ``sent`` that ``replies`` answers
        (once: an interrupted run notes again what it had)."""
        for n, ((kind, i, _), reply) in enumerate(zip(sent, replies)):
            op = self.ops[i]
            if kind == "read":
                if reply is not None and not reply.errno:
                    self.before[i] = Link.from_raw(reply.link)
            elif kind == "after":
                self.note_after(i, reply)
            elif self.done[i] is not None:
                continue
            elif reply is None:                     # the exchange was lost before this one
                lost = self.lost
                assert lost is not None
                if n < lost.sent:                   # sent: its fate is unknown (else: skipped)
                    self.done[i] = Result(op.operation, op.arguments, op.interface, UNKNOWN,
                                          lost.errno, "", lost.detail or lost.strerror)
                self.failed = True
            elif reply.errno:
                self.fail(i, reply.errno, reply.ext_ack, "")
                if op.partial:              # refused part-way: a rollback undoes it too
                    self.unfinished[i] = self.done[i]
            else:
                self.done[i] = Result(op.operation, op.arguments, op.interface)

    def note_after(self, i: int, reply: Optional[Reply]) -> None:
        """A message that finishes op i: if it failed once the op's own
        request was applied, the op failed, and what it made is undone by a
        rollback (``unfinished``)."""
        done = self.done[i]
        if reply is None or done is None or done.status != OK or not self.ops[i].finish_failure(reply):
            return
        self.fail(i, reply.errno, reply.ext_ack, "made, but not finished: "
                  f"{'undone' if self.mode == 'rollback' else 'left as made'}")
        self.unfinished[i] = self.done[i]

    def interrupted(self) -> None:
        """An exception stopped the run: what the exchange under way had
        read is noted, the rest of what it sent is ``unknown``."""
        sent, self.inflight = self.inflight, []
        self.note(sent, self.got)
        for kind, i, _ in sent[len(self.got):]:
            if kind == "op" and self.done[i] is None:
                op = self.ops[i]
                self.done[i] = Result(op.operation, op.arguments, op.interface, UNKNOWN,
                                      _errno.EINTR, "", "interrupted before the kernel's "
                                      "answer was read")
        self.failed = True

    def mark(self, i: int, status: str, errno: int = 0, ext_ack: str = "",
             detail: str = "") -> None:
        """Record what became of applied operation i."""
        done = self.done[i]
        assert done is not None
        self.done[i] = done._replace(status=status, errno=errno, ext_ack=ext_ack, detail=detail)

    def roll_back(self) -> Steps[None]:
        """Undo every operation applied (or perhaps applied), last first,
        pipelined; after a change that may have made the kernel drop
        addresses and routes, put them back and check, before undoing what
        came earlier (which may remove some of them on purpose)."""
        undos: list = []                    # (op index, request, errnos meaning "holds already")
        for i in reversed(range(len(self.ops))):
            done, op = self.done[i], self.ops[i]
            if done is None or (done.status not in (OK, UNKNOWN) and i not in self.unfinished):
                continue
            if op.changes and i not in self.before:     # could not read it: cannot restore it
                if done.status == OK:
                    self.mark(i, ROLLBACK_FAILED, _errno.ENODATA, "",
                              "its state before the change could not be read")
                continue
            encode = op.undo(self.before.get(i), self.built_with[i]) if op.undo else None
            if encode is None:
                self.mark(i, ROLLED_BACK)
                continue
            undos.extend((i, op.request(e), op.gone)
                         for e in (encode if isinstance(encode, list) else [encode]))
            snap = self.snapshots.get(i)
            if snap is not None:
                undos.extend((i, op.request(e), (_errno.EEXIST,)) for e in _restore.restore(snap))
                yield from self.undo(undos) or ()
                undos = []
                yield from self.check_restored(i, snap)
        if undos:
            yield from self.undo(undos) or ()
        for i in self.unfinished:           # undone or not: still the failure that stopped the batch
            done, failure = self.done[i], self.unfinished[i]
            if done is not None and done.status == ROLLED_BACK:
                self.done[i] = failure
            elif done is not None and done.status == ROLLBACK_FAILED:
                undo = f"its undo failed too: {_errno.errorcode.get(done.errno, done.errno)}"
                undo += f" ({done.ext_ack or done.detail})" if done.ext_ack or done.detail else ""
                self.done[i] = failure._replace(
                    detail=f"{failure.detail}; {undo}" if failure.detail else undo)

    def undo(self, undos: list) -> Optional[Steps[None]]:
        """Send the undos (op index, request, errnos meaning its goal holds);
        an op is rolled back when each of its requests succeeded or held.
        A synchronous run sends them now (and returns None); an
        asynchronous one gets the steps that do."""
        steps = self.undo_steps(undos)
        if not self.sync:
            return steps
        run_steps(self.handle.socket, steps)
        return None

    def undo_steps(self, undos: list) -> Steps[None]:
        replies: List[Optional[Reply]]
        try:
            replies = list((yield Exchange([r for _, r, _ in undos])))
        except NetlinkError as e:                   # the undo exchange itself failed
            replies = e.replies if isinstance(e, ExchangeError) else [None] * len(undos)
            lost: Optional[NetlinkError] = e
        else:
            lost = None
        first_failure: dict = {}                    # op index -> (errno, ext_ack, detail) or None
        for (i, _, holds), reply in zip(undos, replies):
            if first_failure.get(i) is not None:
                continue
            if reply is None:
                assert lost is not None
                first_failure[i] = (lost.errno, "", f"the undo got no answer: {lost.detail or lost.strerror}")
            elif reply.errno and reply.errno not in holds:
                first_failure[i] = (reply.errno, reply.ext_ack, "")
            else:
                first_failure[i] = None
        for i, failed in first_failure.items():
            if failed is None:
                self.mark(i, ROLLED_BACK)
            else:
                self.mark(i, ROLLBACK_FAILED, *failed)

    def check_restored(self, i: int, snap: _restore.Snapshot) -> Steps[None]:
        """Compare what the kernel has with what was recorded before op i,
        once it is undone and what the kernel dropped is put back."""
        done = self.done[i]
        if done is None or done.status != ROLLED_BACK:
            return
        op = self.ops[i]
        try:
            addrs, rts = yield from self.dump_addresses_and_routes(op)
        except NetlinkError as e:
            self.mark(i, ROLLBACK_FAILED, e.errno or _errno.EIO, e.ext_ack,
                      "could not read back the addresses and routes it had dropped")
            return
        lost = _restore.missing(snap, addrs, rts)
        if lost:
            self.mark(i, ROLLBACK_FAILED, _errno.ENOENT, "",
                      f"not back after the rollback: {'; '.join(lost)}")

    def results(self) -> List[Result]:
        return [r if r is not None else Result(op.operation, op.arguments, op.interface, SKIPPED)
                for op, r in zip(self.ops, self.done)]
