"""Events: the kernel's notifications of link, address, route and neighbour
changes (``ip monitor``), as decoded records, and waits built on them.

``Handle.events("link", "address", timeout=5)`` subscribes: it opens an
rtnetlink socket in the handle's namespace, joined to the multicast groups
of those kinds, and from then on the kernel queues on it a message for
every change there.  The subscription gives them back as ``Event`` records
whose ``object`` is the ``Link``, ``Address``, ``Route`` or ``Neighbour``
exactly as ``get_link``/``list_addresses``/``list_routes``/
``list_neighbours``/``list_fdb`` give them::

    with pynetlink.Handle(netns="/run/netns/c1") as h, h.events("link", timeout=5) as sub:
        for event in sub:                   # ends 5 s after it began
            print(event.action, event.kind, event.object.name)

The kernel drops notifications when the socket's receive buffer is full
(``rcvbuf``, 4 MiB by default); the next read then raises ``EventsLost``
(an OSError, errno ENOBUFS, with the events read before the loss): the
caller reads the state again with a dump and goes on — the subscription
stays usable.  Nothing is lost silently.

``fileno()`` and the non-blocking ``read()`` are what an event loop needs
(``pynetlink.aio``): wait for the fd to be readable, then ``read()``.

The waits (``wait_for_link``, ``wait_for_address``) subscribe first, then
read the current state once, then follow the events until the condition
holds (it held at some moment after the call began) or the timeout passes:
no polling.  An ``EventsLost`` on the way makes them read the state again.
"""
from __future__ import annotations

import errno as _errno
import ipaddress
import select
import time
from collections import deque, namedtuple
from typing import (TYPE_CHECKING, Any, Callable, Deque, Dict, FrozenSet, Iterable, Iterator, List,
                    NamedTuple, Optional, Union)

from . import _validate as v
from ._core import (AF_BRIDGE, EVENTS_RCVBUF, IFF_LOWER_UP, MIN_RCVBUF, RTM_DELADDR, RTM_DELLINK,
                    RTM_DELNEIGH, RTM_DELROUTE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH,
                    RTM_NEWROUTE, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_IFADDR,
                    RTNLGRP_IPV6_ROUTE, RTNLGRP_LINK, RTNLGRP_NEIGH, EventSocket)
from .addresses import Address
from .errors import EventsLost, NetlinkError, error_for
from .links import Link
from .neighbours import Neighbour
from .routes import Route

if TYPE_CHECKING:
    from .handle import Handle

__all__ = ["Event", "Subscription", "EventsMixin", "KINDS", "Condition", "link_condition",
           "address_condition", "subscribe", "wait_for_link", "wait_for_address"]

#: The kinds one can subscribe to, and the multicast groups of each.
KINDS: Dict[str, tuple] = {
    "link": (RTNLGRP_LINK,),
    "address": (RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR),
    "route": (RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE),
    "neighbour": (RTNLGRP_NEIGH,),
    "fdb": (RTNLGRP_NEIGH,),        # the same group: the entries of family AF_BRIDGE
}
_ALIASES = {"addr": "address", "neigh": "neighbour", "neighbor": "neighbour"}

# nlmsg_type -> (kind, action)
_TYPES = {RTM_NEWLINK: ("link", "new"), RTM_DELLINK: ("link", "del"),
          RTM_NEWADDR: ("address", "new"), RTM_DELADDR: ("address", "del"),
          RTM_NEWROUTE: ("route", "new"), RTM_DELROUTE: ("route", "del"),
          RTM_NEWNEIGH: ("neighbour", "new"), RTM_DELNEIGH: ("neighbour", "del")}

# Kinds whose records name a link by index: the subscription keeps the names.
_NAMED = frozenset({"address", "route", "neighbour", "fdb"})

WAIT_TIMEOUT = 10.0         # seconds a wait lasts unless told otherwise
DRAIN_READS = 1024          # batches one drain() reads at most


class Event(namedtuple("Event", "action kind object")):
    """One change the kernel announced: ``action`` "new" (made or changed)
    or "del" (deleted); ``kind`` "link", "address", "route", "neighbour"
    (an ARP/NDP entry, family "inet"/"inet6"), "fdb" (a forwarding entry,
    family "bridge": the kernel sends both on one group, RTNLGRP_NEIGH;
    each kind is delivered only to a subscription that asked for it), or
    "bridge_port" (a link message about a link's bridge port, sent with
    the link's: "del" means it left the bridge, the link stays); ``object``
    the ``Link``, ``Address``, ``Route``, ``Neighbour`` as the reads give
    them (an Address's ``ifname``, a Route's ``dev``, a Neighbour's
    ``dev``, ``master`` and ``via`` are the links' names as the
    subscription knows them when the event is read: "" or None if
    unknown for an Address or Route, "ifN" for a Neighbour, as ``ip``)."""
    __slots__ = ()


def kinds_of(kinds: Iterable[object]) -> FrozenSet[str]:
    """The kinds asked for, by their names or aliases ("addr", "neigh");
    ValueError/TypeError for anything else, or for none at all."""
    found = set()
    for kind in kinds:
        if not isinstance(kind, str):
            raise TypeError(f"an event kind is a str, not {type(kind).__name__}")
        name = _ALIASES.get(kind, kind)
        if name not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}: one of {', '.join(KINDS)}")
        found.add(name)
    if not found:
        raise ValueError(f"subscribe to at least one kind of event: {', '.join(KINDS)}")
    return frozenset(found)


def _seconds(value: object, what: str = "timeout") -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or None")
    if not 0 <= value <= 86400:
        raise ValueError(f"{what} {value} is out of range [0, 86400] seconds")
    return float(value)


class Subscription:
    """The notifications of ``kinds`` in the namespace of ``handle``, from
    the moment it is made (see the module docstring).  ``timeout``: how
    long an iteration lasts, in seconds from its start (None: until
    closed); it then ends (no exception).  ``get(timeout)`` waits for one
    event and raises TimeoutError instead.  ``rcvbuf``: the socket's
    receive buffer in bytes.  A context manager; not for use across
    ``fork()``, nor by two threads at once."""

    def __init__(self, handle: "Handle", kinds: Iterable[object], *,
                 timeout: Optional[float] = None, rcvbuf: int = EVENTS_RCVBUF,
                 names: Optional[Dict[int, str]] = None):
        self.kinds = kinds_of(kinds)
        self.timeout = _seconds(timeout)
        v.integer(rcvbuf, "rcvbuf", MIN_RCVBUF, 1 << 30)
        self._handle = handle
        self._names: Optional[Dict[int, str]] = None
        handle.socket.check_usable("events", tuple(sorted(self.kinds)))
        named = bool(self.kinds & _NAMED)
        groups = {g for kind in self.kinds for g in KINDS[kind]} | ({RTNLGRP_LINK} if named else set())
        self._sock = EventSocket(sorted(groups), handle.fileno(), rcvbuf)
        self._queue: Deque[Event] = deque()
        self._lost: Optional[EventsLost] = None
        self._more = False
        self._stale = False                 # a loss: the link names are to be read again
        self.needs_names = named and names is not None
        if self.needs_names:                # the caller reads them itself (set_names)
            self._names = dict(names or {})
        elif named:
            try:
                self._refresh_names()   # after joining: a link made since is in one or the other
            except BaseException:
                self.close()
                raise

    # -- life cycle ----------------------------------------------------------

    def fileno(self) -> int:
        """The socket's fd (-1 once closed): readable when events are queued
        (or a loss is to be reported); then call ``read()``."""
        return self._sock.fd

    @property
    def closed(self) -> bool:
        return self._sock.fd < 0

    def close(self) -> None:
        """Close the socket (idempotent); events not read are dropped."""
        self._sock.close()
        self._queue.clear()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self.fileno()}"
        return f"<pynetlink.Subscription {'+'.join(sorted(self.kinds))} {state}>"

    # -- reading -------------------------------------------------------------

    def read(self) -> List[Event]:
        """The events queued now, in order, without waiting ([] if none; at
        most one batch of a few thousand: ``drain()`` reads them all).
        EventsLost (errno ENOBUFS) if the kernel dropped events: its
        ``events`` are those read before the loss; resynchronise with a
        dump and read on.  NetlinkError (EBADF) once closed."""
        events = list(self._queue)
        self._queue.clear()
        if self._lost is None:
            events += self._fetch()
        return self._deliver(events)

    def drain(self) -> List[Event]:
        """Every event queued now, in order, without waiting (``read()``
        until the socket is empty); EventsLost as ``read()``, with every
        event read before the loss."""
        events: List[Event] = []
        for _ in range(DRAIN_READS):
            try:
                events += self.read()
            except EventsLost as e:
                e.events = events + e.events
                raise
            if not self._more:
                break
        return events

    def get(self, timeout: Optional[float] = None) -> Event:
        """The next event, waiting up to ``timeout`` seconds (None: as long
        as it takes) for it; TimeoutError if none came, EventsLost as
        ``read()`` (once the events before the loss have been got)."""
        deadline = _deadline(_seconds(timeout))
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._lost is not None:
                self._deliver([])
            self._queue.extend(self._fetch())
            if not self._queue and self._lost is None and not self._more:
                self._wait_readable(deadline)

    def __iter__(self) -> Iterator[Event]:
        """Every event, as it comes, for ``timeout`` seconds from now (the
        subscription's; None: until closed), then the iteration ends.
        EventsLost is raised by the iteration (after the events before the
        loss): a new iteration goes on from there."""
        deadline = _deadline(self.timeout)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return                      # even while events keep coming
            try:
                yield self.get(left)
            except TimeoutError:
                return

    # -- inside --------------------------------------------------------------

    def _wait_readable(self, deadline: Optional[float]) -> None:
        """Wait until the socket is readable; TimeoutError at ``deadline``."""
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError(_errno.ETIMEDOUT, "no event came in time")
        if self.closed:
            raise error_for(_errno.EBADF, "read events", detail="the subscription is closed")
        poller = select.poll()
        poller.register(self._sock.fd, select.POLLIN)
        poller.poll(None if remaining is None else max(1, int(remaining * 1000 + 0.999)))

    def _deliver(self, events: List[Event]) -> List[Event]:
        """``events``, or the pending loss raised with them."""
        lost, self._lost = self._lost, None
        if lost is None:
            return events
        lost.events = events
        raise lost

    def _fetch(self) -> List[Event]:
        """One batch read from the socket and decoded; a loss is kept in
        ``_lost``, to be raised after the events read before it, and makes
        the link names be read again before the next batch is decoded."""
        if self._stale:
            self._refresh_names()
        raw, self._more, lost = self._sock.read()
        events = [e for e in map(self._event, raw) if e is not None]
        if lost:
            self._lost = error_for(_errno.ENOBUFS, "read events", tuple(sorted(self.kinds)),
                                   detail=f"{lost}; resynchronise with a dump", cls=EventsLost)
            self._stale = self._names is not None
        return events

    @property
    def names_stale(self) -> bool:
        """Whether the link names it decodes with are to be read again (after
        a loss); the next read does it with a dump of the handle's, unless
        ``set_names`` gives them first (an event loop reads them without
        blocking)."""
        return self._stale

    def set_names(self, names: Dict[int, str]) -> None:
        """The link names (ifindex -> name) to decode with, read by the caller
        after this subscribed (a link made since is in one or the other)."""
        if self._names is not None:
            self._names.update(names)
        self._stale = self.needs_names = False

    def _refresh_names(self) -> None:
        self._names = self._handle._link_names("events", tuple(sorted(self.kinds)))
        self._stale = False

    def _event(self, raw: tuple) -> Optional[Event]:
        """The Event of one RawEvent, or None for one not asked for (link
        messages kept for the names only)."""
        msg_type, family, body = raw
        kind, action = _TYPES[msg_type]
        if kind == "neighbour" and family == AF_BRIDGE:
            kind = "fdb"
        names = self._names
        if kind == "link":
            if family == AF_BRIDGE:
                kind = "bridge_port"
            elif names is not None and body["name"]:
                names[body["index"]] = body["name"]     # kept after "del": DELADDRs follow it
            return Event(action, kind, Link.from_raw(body)) if "link" in self.kinds else None
        if kind not in self.kinds:
            return None
        names = names or {}
        if kind == "address":
            return Event(action, kind, Address.from_raw(body, names.get(body["index"], "")))
        if kind == "route":
            return Event(action, kind, Route.from_raw(body, names.get(body["oif"]) if body["oif"]
                                                      else None))
        return Event(action, kind, Neighbour.from_raw(body, names))


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + timeout


# -- waits ---------------------------------------------------------------------

class Condition(NamedTuple):
    """What a wait waits for, for the sync waits here and the awaited ones
    of ``pynetlink.aio``: the state is ``pick(result)`` of the read
    ``read(*args)`` of a Handle (None when it says ENODEV), then
    ``follow(state, event)`` after each event of ``kind``; the wait ends
    once ``holds(state)`` (which may raise), TimeoutError after ``timeout``."""
    kind: str
    read: str
    args: tuple
    pick: Callable[[Any], Any]
    follow: Callable[[Any, Event], Any]
    holds: Callable[[Any], bool]
    timeout: float
    what: str

    def state(self, result: Any) -> Any:
        return self.pick(result)

    def absent(self, error: NetlinkError) -> bool:
        """Whether the read's error means "no such link": the state None."""
        return error.errno == _errno.ENODEV

    def until(self, state: Any, events: Iterable[Event]) -> tuple:
        """(state after ``events``, whether it held after one of them)."""
        for event in events:
            state = self.follow(state, event)
            if self.holds(state):
                return state, True
        return state, False

    def timed_out(self) -> TimeoutError:
        return TimeoutError(_errno.ETIMEDOUT, f"{self.what}: not within {self.timeout:g} s")


def link_condition(name: str, carrier: Optional[bool] = None, up: Optional[bool] = None,
                   exists: bool = True, timeout: float = WAIT_TIMEOUT) -> Condition:
    """``wait_for_link``'s condition, its arguments validated."""
    v.ifname(name)
    _flag(carrier, "carrier")
    _flag(up, "up")
    _exists(exists)
    seconds = _timeout(timeout)

    def holds(link: Optional[Link]) -> bool:
        if link is None:
            return not exists
        return exists and (carrier is None or bool(link.flags & IFF_LOWER_UP) == carrier) \
            and (up is None or link.up == up)

    return Condition("link", "get_link", (name,), lambda link: link,
                     lambda state, event: _follow_link(name, state, event), holds, seconds,
                     f"wait_for_link({name!r})")


def address_condition(name: str, cidr: Union[str, v.IPInterface], tentative: Optional[bool] = False,
                      exists: bool = True, timeout: float = WAIT_TIMEOUT) -> Condition:
    """``wait_for_address``'s condition, its arguments validated."""
    v.ifname(name)
    iface = v.cidr(cidr)
    _flag(tentative, "tentative")
    _exists(exists)
    seconds = _timeout(timeout)

    def holds(address: Optional[Address]) -> bool:
        if address is None:
            return not exists
        if exists and tentative is False and address.dadfailed:
            raise error_for(_errno.EADDRNOTAVAIL, "wait_for_address", (name, cidr), name,
                            detail="duplicate address detection failed: another host has it")
        return exists and (tentative is None or address.tentative == tentative)

    def follow(state: Optional[Address], event: Event) -> Optional[Address]:
        if event.kind != "address" or event.object.ifname != name or \
                not _same(event.object, iface):
            return state
        return event.object if event.action == "new" else None

    return Condition("address", "list_addresses", (name, iface.version),
                     lambda found: next((a for a in found if _same(a, iface)), None), follow, holds,
                     seconds, f"wait_for_address({name!r}, {str(cidr)!r})")


def _wait(handle: "Handle", cond: Condition) -> Any:
    """Subscribe, read the state, then follow the events until
    ``cond.holds(state)``; the state then.  An EventsLost reads the state
    again; TimeoutError after ``cond.timeout``."""
    def read_state() -> Any:
        try:
            return cond.state(getattr(handle, cond.read)(*cond.args))
        except NetlinkError as e:
            if cond.absent(e):
                return None
            raise

    deadline = time.monotonic() + cond.timeout
    with Subscription(handle, (cond.kind,)) as sub:
        state = read_state()
        held = cond.holds(state)
        while not held:
            try:
                event = sub.get(max(0.0, deadline - time.monotonic()))
            except EventsLost:
                state = read_state()            # the resync: what is there now
                held = cond.holds(state)
                continue
            except TimeoutError:
                raise cond.timed_out() from None
            state, held = cond.until(state, (event,))
        return state


def _flag(value: Optional[bool], what: str) -> Optional[bool]:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{what} must be True, False or None, not {type(value).__name__}")
    return value


class EventsMixin:
    """The event methods of ``Handle``: ``events``, ``wait_for_link`` and
    ``wait_for_address``."""

    def events(self, *kinds: str, timeout: Optional[float] = None,
               rcvbuf: int = EVENTS_RCVBUF) -> Subscription:
        """Subscribe to the changes of ``kinds`` ("link", "address",
        "route", "neighbour", "fdb"; "addr", "neigh" too) in this handle's
        namespace: a ``Subscription`` (see ``pynetlink.events``), iterable
        for ``timeout`` seconds, with a ``rcvbuf``-byte receive buffer.
        Equivalent to: ``ip monitor link address route neigh`` (and
        ``bridge monitor fdb``)."""
        return Subscription(self._as_handle(), kinds, timeout=timeout, rcvbuf=rcvbuf)

    def wait_for_link(self, name: str, *, carrier: Optional[bool] = None,
                      up: Optional[bool] = None, exists: bool = True,
                      timeout: float = WAIT_TIMEOUT) -> Optional[Link]:
        """Wait until link NAME exists with ``carrier`` (IFF_LOWER_UP: up
        and its lower layer, e.g. a veth's peer, up too) and admin state
        ``up`` as asked (None: either), and return it — or, with
        ``exists=False``, until there is no link NAME (None).  TimeoutError
        after ``timeout`` seconds.  Equivalent to: ``ip monitor link``
        until ``ip link show NAME`` shows LOWER_UP (or fails)."""
        return _wait(self._as_handle(), link_condition(name, carrier, up, exists, timeout))

    def wait_for_address(self, name: str, cidr: Union[str, v.IPInterface], *,
                         tentative: Optional[bool] = False, exists: bool = True,
                         timeout: float = WAIT_TIMEOUT) -> Optional[Address]:
        """Wait until link NAME has address CIDR, ``tentative`` as asked
        (False, the default: duplicate address detection has finished and
        the address is usable; None: either), and return it — or, with
        ``exists=False``, until it has not (None).  Waiting for a usable
        address whose DAD failed raises NetlinkError (EADDRNOTAVAIL) at once.
        TimeoutError after ``timeout`` seconds.  Equivalent to: ``ip monitor
        address`` until ``ip addr show dev NAME`` lists CIDR without
        "tentative"."""
        return _wait(self._as_handle(), address_condition(name, cidr, tentative, exists, timeout))

    def _as_handle(self) -> "Handle":
        """The Handle these methods act through (a Handle is its own)."""
        return self         # type: ignore[return-value]


def _follow_link(name: str, state: Optional[Link], event: Event) -> Optional[Link]:
    """The link NAME after a link event: that link's record, None once it
    is deleted or renamed away (its index is followed)."""
    if event.kind != "link":
        return state
    link: Link = event.object
    if link.name != name and (state is None or link.index != state.index):
        return state
    if event.action == "del" or link.name != name:
        return None
    return link


def _same(address: Address, iface: v.IPInterface) -> bool:
    return address.prefixlen == iface.network.prefixlen and \
        ipaddress.ip_address(address.local) == iface.ip


def _exists(value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"exists must be True or False, not {type(value).__name__}")


def _timeout(value: object) -> float:
    seconds = _seconds(value)
    if seconds is None:
        raise TypeError("a wait's timeout must be a number of seconds")
    return seconds


# -- the module level: the calling thread's default handle ---------------------------

def _default() -> "Handle":
    from .handle import default_handle
    return default_handle()


def subscribe(*kinds: str, timeout: Optional[float] = None,
              rcvbuf: int = EVENTS_RCVBUF) -> Subscription:
    """``Handle.events`` in the calling thread's current namespace (the
    module level's name for it: ``pynetlink.events`` is this module)."""
    return _default().events(*kinds, timeout=timeout, rcvbuf=rcvbuf)


def wait_for_link(name: str, **conditions: Any) -> Optional[Link]:
    """``Handle.wait_for_link`` in the calling thread's current namespace."""
    return _default().wait_for_link(name, **conditions)


def wait_for_address(name: str, cidr: Union[str, v.IPInterface], **conditions: Any) -> Optional[Address]:
    """``Handle.wait_for_address`` in the calling thread's current namespace."""
    return _default().wait_for_address(name, cidr, **conditions)
