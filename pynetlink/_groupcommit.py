"""Group commit: work that concurrent threads submit, done a group at a
time.  A thread whose item finds no group running leads: it runs every item
waiting (its own included); the others wait, each for its own wake-up, and
when a group ends the first of those still waiting leads the next one.  A
lone caller runs at once, alone.

Every waiter is woken exactly once — when its group has run, or to lead —
never by another's arrival or end: a burst of N submitters costs N
wake-ups, not N² (each a context switch, and a fight for the GIL).

Callers may announce themselves before they submit (``expecting``): a
leader about to run a group first gives the announced ones still on their
way up to ``gather`` seconds to join it.

Used where each item alone would pay a fixed cost that a group pays once:
a combining socket's exchanges (_combine.py: one round trip for every
thread's requests), host-local's DELs on one store (cni/hostlocal.py: one
lock taken and one directory read for all the releases waiting), the CNI
daemon's link removals (cni/bridge_del.py: one group delete, one RCU grace
period, for all the pods waiting).
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, Iterator, List, Optional


class _Entry:
    __slots__ = ("item", "done", "error", "wake")

    def __init__(self, item: Any):
        self.item = item
        self.done = False
        self.error: Optional[BaseException] = None
        self.wake = threading.Lock()            # held until its submitter is to go on
        self.wake.acquire()


class GroupCommit:
    """``submit(item)`` returns once ``run`` has handled ``item`` (with the
    others waiting at the time: ``run(items)``, in submission order); an
    exception of that ``run`` is raised to every submitter of its group."""

    def __init__(self, run: Callable[[List[Any]], None], gather: float = 0.0):
        self.run = run
        self.gather = gather
        self.lock = threading.Lock()
        self.arrival = threading.Condition(self.lock)   # only a gathering leader waits on it
        self.waiting: List[_Entry] = []
        self.leader: Optional[_Entry] = None    # the entry leading, or chosen to lead next
        self.expected = 0                       # announced, not submitted yet
        self.announced = threading.local()

    @property
    def busy(self) -> bool:
        """A group is running, or a leader has been chosen for the next."""
        return self.leader is not None

    @contextlib.contextmanager
    def expecting(self, coming: bool = True) -> Iterator[None]:
        """The calling thread will ``submit`` within the block (if ``coming``)."""
        if not coming:
            yield
            return
        with self.lock:
            self.expected += 1
        self.announced.pending = True
        try:
            yield
        finally:
            if self.announced.pending:          # it never submitted
                self.announced.pending = False
                with self.lock:
                    self.expected -= 1
                    self.arrival.notify()

    def submit(self, item: Any) -> None:
        mine = _Entry(item)
        with self.lock:
            if getattr(self.announced, "pending", False):
                self.announced.pending = False
                self.expected -= 1
            self.waiting.append(mine)
            lead = self.leader is None
            if lead:
                self.leader = mine
            self.arrival.notify()               # a gathering leader counts it
        if not lead:
            try:
                mine.wake.acquire()             # its group has run, or it leads the next
            except BaseException:               # interrupted (KeyboardInterrupt...): it leaves
                self._withdraw(mine)
                raise
        if not mine.done:
            self._lead(mine)
        if mine.error is not None:
            raise mine.error

    def _lead(self, mine: _Entry) -> None:
        """Run the waiting items (``mine`` among them) as one group, then
        wake each of their submitters, and the next leader if any."""
        try:
            with self.lock:
                self._gather()
                group, self.waiting = self.waiting, []
        except BaseException:                   # interrupted while gathering: the lead passes on
            self._withdraw(mine)
            raise
        error: Optional[BaseException] = None
        try:
            self.run([e.item for e in group])
        except BaseException as e:              # noqa: BLE001 - every submitter of the group gets it
            error = e
        for entry in group:
            entry.error, entry.done = error, True
        with self.lock:
            following = self.waiting[0] if self.waiting else None
            self.leader = following
        for entry in group:
            if entry is not mine:
                entry.wake.release()
        if following is not None:
            following.wake.release()

    def _withdraw(self, mine: _Entry) -> None:
        """``mine``'s submitter was interrupted before its group ran: its
        item leaves the queue (unless a group already holds it), and if it
        led or was to lead, the first one still waiting leads instead —
        nobody is left waiting for a leader that is gone."""
        with self.lock:
            if mine in self.waiting:
                self.waiting.remove(mine)
            if self.leader is not mine:
                return
            following = self.waiting[0] if self.waiting else None
            self.leader = following
        if following is not None:
            following.wake.release()

    def _gather(self) -> None:
        """(With the lock held) let the announced submitters join, for at most ``gather`` s."""
        end = time.monotonic() + self.gather
        while self.expected > 0:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.arrival.wait(left)


_groups: dict = {}
_groups_lock = threading.Lock()


def group_for(key: Any, make: Callable[[], Callable[[List[Any]], None]]) -> GroupCommit:
    """The process's GroupCommit for ``key`` (made by ``make()`` on first use)."""
    with _groups_lock:
        group = _groups.get(key)
        if group is None:
            group = _groups[key] = GroupCommit(make())
        return group
