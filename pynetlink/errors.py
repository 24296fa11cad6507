"""Errors: what the kernel refused, as ``OSError`` subclasses with ``errno``.

``NetlinkError`` is raised for every failed request.  For an errno that
Python maps to a builtin ``OSError`` subclass the exception is also an
instance of it, so ``except FileExistsError`` catches EEXIST and
``except ProcessLookupError`` a dead pid, while ``e.errno == errno.ENODEV``
works for the rest::

    set_mtu('veth0', 10): [Errno 22] Invalid argument: mtu less than device minimum
"""
from __future__ import annotations

import os
from typing import Optional

__all__ = ["NetlinkError", "error_for"]


class NetlinkError(OSError):
    """The kernel (or the netlink exchange) failed a request.

    Attributes: ``errno``, ``strerror``, ``operation`` (e.g. ``"set_mtu"``),
    ``interface`` (the name the request was about, or None), ``arguments``
    (the caller's arguments) and ``ext_ack`` (the kernel's extended-ack text,
    or ``""``).
    """

    def __init__(self, errno: int, operation: str, arguments: tuple = (),
                 interface: Optional[str] = None, ext_ack: str = ""):
        super().__init__(errno, os.strerror(errno))
        self.operation = operation
        self.arguments = arguments
        self.interface = interface
        self.ext_ack = ext_ack

    def __reduce__(self):
        return (error_for, (self.errno, self.operation, self.arguments,
                            self.interface, self.ext_ack))

    def __str__(self) -> str:
        call = f"{self.operation}({', '.join(map(repr, self.arguments))})"
        text = f"{call}: [Errno {self.errno}] {self.strerror}"
        if self.interface is not None and self.interface not in self.arguments:
            text += f": {self.interface!r}"         # e.g. the bridge a veth was to join
        return f"{text}: {self.ext_ack}" if self.ext_ack else text


_classes: dict[type, type] = {}


def _class_for(errno: int) -> type:
    builtin = type(OSError(errno, ""))          # e.g. FileExistsError for EEXIST
    if builtin is OSError:
        return NetlinkError
    cls = _classes.get(builtin)
    if cls is None:
        cls = type(f"Netlink{builtin.__name__}", (NetlinkError, builtin),
                   {"__module__": __name__, "__doc__": f"NetlinkError that is also a {builtin.__name__}."})
        _classes[builtin] = cls
    return cls


def error_for(errno: int, operation: str, arguments: tuple = (),
              interface: Optional[str] = None, ext_ack: str = "") -> NetlinkError:
    """The exception for a request that failed with ``errno`` (positive)."""
    return _class_for(errno)(errno, operation, arguments, interface, ext_ack)
