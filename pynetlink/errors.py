"""Errors: what the kernel refused, as ``OSError`` subclasses with ``errno``.

``NetlinkError`` is raised for every failed request.  For an errno that
Python maps to a builtin ``OSError`` subclass the exception is also an
instance of it, so ``except FileExistsError`` catches EEXIST and
``except ProcessLookupError`` a dead pid, while ``e.errno == errno.ENODEV``
works for the rest::

    set_mtu('veth0', 10): [Errno 22] Invalid argument: mtu less than device minimum

The kernel's words and the library's are kept apart: ``ext_ack`` holds only
the text the kernel sent in its extended ACK (NLMSGERR_ATTR_MSG), shown
after a colon as above; ``detail`` holds the library's own explanation (a
closed handle, one made before ``fork()``, what an exchange lost, ...),
shown in parentheses::

    get_link('lo'): [Errno 9] Bad file descriptor (the netlink handle is closed)

Either, both (``...: <ext_ack> (<detail>)``) or neither may be present.

Two kinds carry more than one answer, as declared subclasses:

- ``ExchangeError``: the exchange itself failed (a timeout, the kernel
  dropped replies with ENOBUFS, a socket error); ``replies`` says what is
  known of each request sent together, ``sent`` how many were sent.
- ``BatchError``: a batch left by its ``with`` block had an operation that
  failed; ``results`` holds every operation's ``Result``.  Its errno and
  message are the first failure's.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, List, Optional, Sequence

if TYPE_CHECKING:
    from ._core import Reply
    from .batch import Result

__all__ = ["NetlinkError", "ExchangeError", "BatchError", "error_for"]


class NetlinkError(OSError):
    """The kernel (or the netlink exchange) failed a request.

    Attributes: ``errno``, ``strerror``, ``operation`` (e.g. ``"set_mtu"``),
    ``interface`` (the name the request was about, or None), ``arguments``
    (the caller's arguments), ``ext_ack`` (the kernel's extended-ack text,
    or ``""``: never the library's) and ``detail`` (the library's own
    explanation, or ``""``: never the kernel's).  ``detail`` is keyword-only.
    """

    def __init__(self, errno: int, operation: str, arguments: tuple = (),
                 interface: Optional[str] = None, ext_ack: str = "", *, detail: str = ""):
        super().__init__(errno, os.strerror(errno))
        self.operation = operation
        self.arguments = arguments
        self.interface = interface
        self.ext_ack = ext_ack
        self.detail = detail

    def _state(self) -> tuple:
        """The positional arguments of ``error_for`` (``detail`` and a
        subclass's fields travel in ``__dict__``)."""
        return (self.errno, self.operation, self.arguments, self.interface, self.ext_ack)

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self).__mro__[1] if type(self) in _classes.values() else type(self),
                           self._state(), self.__dict__))

    def __str__(self) -> str:
        call = f"{self.operation}({', '.join(map(repr, self.arguments))})"
        text = f"{call}: [Errno {self.errno}] {self.strerror}"
        if self.interface is not None and self.interface not in self.arguments:
            text += f": {self.interface!r}"         # e.g. the bridge a veth was to join
        if self.ext_ack:
            text += f": {self.ext_ack}"             # the kernel's words
        if self.detail:
            text += f" ({self.detail})"             # ours
        return text


class ExchangeError(NetlinkError):
    """The exchange with the kernel failed as a whole: no answer within the
    timeout (ETIMEDOUT), replies dropped by the kernel (ENOBUFS), a reply
    too large for any buffer (EMSGSIZE), or a socket error.

    ``operation`` names the first request whose fate is unknown.
    ``replies``: one entry per request of the exchange, in order — its
    ``Reply`` where the kernel's answer was read, None where it is unknown
    (it may or may not have been applied) or where the request was never
    sent; ``sent``: how many requests were sent (those after were not).
    """

    def __init__(self, errno: int, operation: str, arguments: tuple = (),
                 interface: Optional[str] = None, ext_ack: str = "",
                 replies: Sequence[Optional["Reply"]] = (), sent: int = 0, *, detail: str = ""):
        super().__init__(errno, operation, arguments, interface, ext_ack, detail=detail)
        self.replies: List[Optional["Reply"]] = list(replies)
        self.sent = sent


class BatchError(NetlinkError):
    """A batch run by its ``with`` block had an operation that failed (or
    whose fate is unknown).  ``errno``, ``operation`` and the message are
    those of the first such operation; ``results`` holds one ``Result`` per
    queued operation, in order."""

    def __init__(self, errno: int, operation: str, arguments: tuple = (),
                 interface: Optional[str] = None, ext_ack: str = "",
                 results: Sequence["Result"] = (), *, detail: str = ""):
        super().__init__(errno, operation, arguments, interface, ext_ack, detail=detail)
        self.results: List["Result"] = list(results)


# (declared class, builtin OSError subclass) -> the class that is both
_classes: dict = {}


def _class_for(base: type, errno: int) -> type:
    builtin = type(OSError(errno, ""))          # e.g. FileExistsError for EEXIST
    if builtin is OSError:
        return base
    cls = _classes.get((base, builtin))
    if cls is None:
        name = f"{base.__name__[:-5]}{builtin.__name__}"    # NetlinkFileExistsError, ...
        cls = type(name, (base, builtin), {
            "__module__": __name__,
            "__doc__": f"{base.__name__} that is also a {builtin.__name__}."})
        _classes[(base, builtin)] = cls
    return cls


def _rebuild(base: type, state: tuple, attributes: dict) -> NetlinkError:
    error = error_for(*state, cls=base)
    error.__dict__.update(attributes)
    return error


def error_for(errno: int, operation: str, arguments: tuple = (),
              interface: Optional[str] = None, ext_ack: str = "", *, detail: str = "",
              cls: type = NetlinkError, **fields: Any) -> Any:
    """The exception of class ``cls`` (``NetlinkError`` or a declared
    subclass, with its ``fields``) for a request that failed with ``errno``
    (positive), also an instance of the builtin subclass for that errno.
    ``ext_ack``: the kernel's extended-ack text only; ``detail``: the
    library's own explanation."""
    return _class_for(cls, errno)(errno, operation, arguments, interface, ext_ack,
                                  detail=detail, **fields)


# -- events (issue 16) --

class EventsLost(NetlinkError):
    """The kernel dropped notifications meant for an event subscription
    (its socket's receive buffer overflowed: errno ENOBUFS): what changed
    since is unknown, so resynchronise — read the current state again with
    a dump (``list_links``, ``list_addresses``, ``list_routes``) — and go on
    reading: the subscription stays usable.  ``events``: the events read
    before the loss, in order (handle them first)."""

    def __init__(self, errno: int, operation: str, arguments: tuple = (),
                 interface: Optional[str] = None, ext_ack: str = "",
                 events: Sequence[Any] = (), *, detail: str = ""):
        super().__init__(errno, operation, arguments, interface, ext_ack, detail=detail)
        self.events: List[Any] = list(events)


__all__ += ["EventsLost"]
