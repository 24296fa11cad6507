"""A link deletion answered once the kernel has unlisted the links, not
once the deleting syscall returns.

Deleting a veth (RTM_DELLINK) takes some 20 ms, but almost all of it comes
after anything can be observed: ``unregister_netdevice_many()`` unlists the
device (its name is free, it is gone from every dump, its addresses and
routes are flushed; a veth's peer likewise) and sends the RTM_DELLINK
notification to RTNLGRP_LINK, all under RTNL; then ``rtnl_unlock()`` ->
``netdev_run_todo()`` waits for an RCU grace period and for the device's
last references, in the deleting thread's syscall, before the ACK.  Nothing
anyone can see changes during that wait, and it cannot be interrupted (a
process killed meanwhile still completes it).

``delete_unlisted`` joins RTNLGRP_LINK in the namespace first, starts the
deletion in a background thread, and returns as soon as an RTM_DELLINK of every link it was told of has been
read; the thread goes on to the ACK (``finish`` waits for those still
running).  ``start_unlisted`` splits it in two: the deletion started now,
its unlisting waited for later (``Unlisting.wait``), by any number of
callers — the daemon's grouped DELs prepare the next group while the
kernel unlists the previous one.  If the deletion ends first
(refused, or the link already gone), its own outcome is returned: its
errors are exactly those of the synchronous deletion.  Whatever goes wrong
with the monitor (it cannot be opened, it overflows on a busy host:
ENOBUFS), the deletion is simply waited for.

Only the daemon answers early (``EARLY``, set by ``daemon.main``): a
short-lived exec-mode process would wait for its thread at exit anyway.
"""
from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from typing import Callable, Collection, Optional

from .._core import AF_UNSPEC, RTM_DELLINK, Monitor
from .spec import warn

EARLY = False                   # the daemon sets it: deletions answer once unlisted
TIMEOUT = 30.0                  # seconds a deletion may take, monitor and thread together
MONITOR_RCVBUF = 1 << 20        # a busy host's notifications, before ENOBUFS
POLL_SLICE = 1.0                # seconds per poll(): the deadline is looked at after each
MAX_POLLS = 100_000             # polls one deletion may make, on top of its deadline

_lock = threading.Lock()
_running: set = set()           # the deletions answered early, still running (Deletion objects)


def _forget_running() -> None:
    """In a forked child: none of the parent's deletions or lock holders."""
    global _lock
    _lock = threading.Lock()
    _running.clear()


os.register_at_fork(after_in_child=_forget_running)


class Deletion:
    """``delete()`` run in a background (non-daemon) thread of its own,
    registered in ``_running`` until it ends; ``wake`` (a pipe's read end)
    becomes readable when it does.  A thread of its own, not one of a pool:
    it starts in the network namespace of the thread that starts it, where
    ``delete`` expects to run (a pooled thread would be wherever it was
    first made)."""

    def __init__(self, delete: Callable[[], object]):
        self.delete = delete
        self.lock = threading.Lock()
        self.done = False
        self.answered = False           # the caller returned before the end
        self.error: Optional[BaseException] = None
        self.ended = threading.Event()
        self.wake, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.thread = threading.Thread(target=self.run, name="pynetlink-cni-delete")

    def start(self) -> bool:
        """Started: True; False if no thread could be had (the deletion is
        then the caller's to run, and ``wake`` its to close)."""
        with _lock:
            _running.add(self)
        try:
            self.thread.start()
        except RuntimeError:
            with _lock:
                _running.discard(self)
            os.close(self._wake_w)
            return False
        return True

    def run(self) -> None:
        try:
            self.delete()
        except BaseException as e:      # noqa: BLE001 - the caller's, or logged if it has gone
            self.error = e
        finally:
            with self.lock:
                self.done = True
                late = self.answered and self.error is not None
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"\0")
            os.close(self._wake_w)
            self.ended.set()
            with _lock:
                _running.discard(self)
        if late:
            warn(f"a deletion answered once unlisted failed afterwards: {self.error}")

    def answer_early(self) -> bool:
        """Mark the caller gone, unless the deletion has ended already
        (then its own outcome is the answer): True if it was marked."""
        with self.lock:
            self.answered = not self.done
            return self.answered

    def outcome(self, deadline: float) -> None:
        """Wait for the deletion (until ``deadline``, monotonic) and raise its
        error; TimeoutError if it is still running then."""
        if not self.ended.wait(max(0.0, deadline - time.monotonic())):
            self.answer_early()
            raise TimeoutError("the link deletion did not finish in time; it goes on")
        if self.error is not None:
            raise self.error


class Unlisting:
    """A deletion started by ``start_unlisted``: ``wait()`` returns once the
    kernel has unlisted its links, or raises the deletion's own error —
    for every caller (the first one watches, the others wait for its
    verdict)."""

    def __init__(self, monitor: Optional[Monitor] = None, job: Optional[Deletion] = None,
                 pending: Optional[set] = None, deadline: float = 0.0,
                 error: Optional[BaseException] = None):
        self.monitor, self.job, self.pending, self.deadline = monitor, job, pending, deadline
        self.error = error
        self.lock = threading.Lock()
        self.settled = job is None          # no deletion running: the outcome is known

    def wait(self) -> None:
        with self.lock:
            if not self.settled:
                try:
                    self._settle()
                except BaseException as e:  # noqa: BLE001 - every waiter's, not the first one's only
                    self.error = e
                self.settled = True
        if self.error is not None:
            raise self.error

    def __del__(self) -> None:
        """Never waited for: its monitor and pipe are closed (the deletion goes on)."""
        if not getattr(self, "settled", True) and self.monitor is not None and self.job is not None:
            self.settled = True
            with contextlib.suppress(OSError):
                self.monitor.close()
            with contextlib.suppress(OSError):
                os.close(self.job.wake)

    def _settle(self) -> None:
        assert self.monitor is not None and self.job is not None and self.pending is not None
        job = self.job
        with self.monitor:
            try:
                unlisted = watch(self.monitor, self.pending, job.wake, self.deadline)
            except OSError:                 # the monitor failed (ENOBUFS...): wait for the ACK
                unlisted = False
            finally:
                os.close(job.wake)
        if unlisted and job.answer_early():
            return
        job.outcome(self.deadline)          # its error, if any, is every waiter's (wait)


def start_unlisted(netns: Optional[int], indexes: Collection[int], delete: Callable[[], object],
                   timeout: float = TIMEOUT) -> Unlisting:
    """Start ``delete()`` (which deletes the links ``indexes`` of the
    namespace held by fd ``netns``; None: the caller's) with the monitor
    joined first, so no notification can be missed; its ``wait()`` then
    returns once the kernel has unlisted every one of them (an RTM_DELLINK
    of each read), or once ``delete`` has ended, whichever comes first (in
    the latter case ``delete``'s exception is raised).  Without
    ``indexes``, or if the monitor or a thread cannot be had, ``delete``
    runs here, now.  TimeoutError if neither happens within ``timeout``
    seconds (the deletion then goes on in its thread)."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, not {timeout}")
    pending = {int(i) for i in indexes}
    if not pending:
        return run_here(delete)
    try:
        monitor = Monitor(-1 if netns is None else netns, rcvbuf=MONITOR_RCVBUF)
    except (OSError, RuntimeError):
        return run_here(delete)             # no monitor: wait for the kernel's ACK
    try:
        job = Deletion(delete)
    except OSError:                         # no pipe (EMFILE...): the deletion runs here
        monitor.close()
        return run_here(delete)
    if not job.start():                     # no thread to be had: likewise
        os.close(job.wake)
        monitor.close()
        return run_here(delete)
    return Unlisting(monitor, job, pending, time.monotonic() + timeout)


def run_here(delete: Callable[[], object]) -> Unlisting:
    """``delete()`` run in the calling thread; its outcome, settled."""
    try:
        delete()
    except BaseException as e:              # noqa: BLE001 - raised by wait()
        return Unlisting(error=e)
    return Unlisting()


def delete_unlisted(netns: Optional[int], indexes: Collection[int], delete: Callable[[], object],
                    timeout: float = TIMEOUT) -> None:
    """``start_unlisted(...).wait()``: ``delete()`` run, returning once the
    kernel has unlisted the links ``indexes`` (or with its own outcome)."""
    start_unlisted(netns, indexes, delete, timeout).wait()


def watch(monitor: Monitor, pending: set, wake: int, deadline: float) -> bool:
    """Read ``monitor`` until an RTM_DELLINK of every index in ``pending``
    has come (True), or ``wake`` is readable or ``deadline`` passes (False)."""
    poller = select.poll()
    poller.register(monitor.fileno(), select.POLLIN)
    poller.register(wake, select.POLLIN)
    for _ in range(MAX_POLLS):
        for event in monitor.link_events():
            if event.type == RTM_DELLINK and event.family == AF_UNSPEC:
                pending.discard(event.index)
        if not pending:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready = poller.poll(min(left, POLL_SLICE) * 1000)
        if any(fd == wake for fd, _ in ready):
            return False
    return False


def finish(deadline: float) -> bool:
    """Wait (until ``deadline``, monotonic) for the deletions answered
    early that are still running; True if none is left."""
    for _ in range(MAX_POLLS):
        with _lock:
            running = list(_running)
        if not running:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        running[0].ended.wait(left)
    return False
