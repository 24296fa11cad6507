"""Group commit: work that concurrent threads submit, done a group at a
time.  A thread whose item finds no group running runs every item waiting
(its own included); the others wait for it, and one of those still
waiting then runs the next group.  A lone caller runs at once, alone.

Used where each item alone would pay a fixed cost that a group pays once:
host-local's DELs on one store (one lock taken and one directory read for
all the releases waiting, instead of one each).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, List, Optional


class _Entry:
    def __init__(self, item: Any):
        self.item = item
        self.done = False
        self.error: Optional[BaseException] = None


class GroupCommit:
    """``submit(item)`` returns once ``run`` has handled ``item`` (with the
    others waiting at the time: ``run(items)``, in submission order); an
    exception of that ``run`` is raised to every submitter of its group."""

    def __init__(self, run: Callable[[List[Any]], None]):
        self.run = run
        self.cond = threading.Condition()
        self.waiting: List[_Entry] = []
        self.busy = False

    def submit(self, item: Any) -> None:
        mine = _Entry(item)
        with self.cond:
            self.waiting.append(mine)
            while self.busy and not mine.done:
                self.cond.wait()
            if mine.done:
                group: List[_Entry] = []
            else:
                self.busy = True
                group, self.waiting = self.waiting, []
        if group:
            error: Optional[BaseException] = None
            try:
                self.run([e.item for e in group])
            except BaseException as e:          # noqa: BLE001 - every submitter of the group gets it
                error = e
            with self.cond:
                for entry in group:
                    entry.error, entry.done = error, True
                self.busy = False
                self.cond.notify_all()
        if mine.error is not None:
            raise mine.error


_groups: dict = {}
_groups_lock = threading.Lock()


def group_for(key: Any, make: Callable[[], Callable[[List[Any]], None]]) -> GroupCommit:
    """The process's GroupCommit for ``key`` (made by ``make()`` on first use)."""
    with _groups_lock:
        group = _groups.get(key)
        if group is None:
            group = _groups[key] = GroupCommit(make())
        return group
