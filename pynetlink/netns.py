"""Network namespaces: naming them (path, fd) and entering them per thread.

``setns(2)`` moves the calling thread only, so everything here is
thread-local: no fork, no process-wide switch.  Namespace files are opened
read-only and close-on-exec.
"""
from __future__ import annotations

import contextlib
import errno
import os
from typing import Iterator, Union

from . import _validate as v
from ._core import netns_check, netns_new, setns_net

Target = Union[str, "os.PathLike[str]", int]

THREAD_NETNS = "/proc/thread-self/ns/net"


def check_target(target: object) -> Target:
    """``target`` if it names a namespace as a path (str, bytes, PathLike)
    or an fd (int); TypeError otherwise."""
    if isinstance(target, bool) or not isinstance(target, (int, str, bytes, os.PathLike)):
        raise TypeError(f"netns must be a path or an fd, not {type(target).__name__}")
    return target  # type: ignore[return-value]


def open_netns(target: Target) -> int:
    """Open a network namespace path read-only; the caller closes the fd.
    A path that is not a network namespace raises OSError (EINVAL) naming it."""
    fd = os.open(v.path(target), os.O_RDONLY | os.O_CLOEXEC)
    try:
        netns_check(fd, target)
    except OSError:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def netns_fd(target: Target) -> Iterator[int]:
    """An fd for ``target``: an int is used as is (the caller keeps it);
    a path is opened for the duration of the block."""
    if isinstance(check_target(target), int):
        given = v.fd(target)
        netns_check(given, f"fd {given}")
        yield given
        return
    fd = open_netns(target)
    try:
        yield fd
    finally:
        os.close(fd)


def create() -> int:
    """Make a new, empty network namespace and return an fd that holds it
    (read-only, close-on-exec).  Nothing names it: it disappears when the fd
    is closed and no process or mount keeps it, so it cannot be leaked.  Use
    it as ``Handle(netns=fd)``; ``ip`` sees it as ``nsenter
    --net=/proc/PID/fd/FD ip ...``.  The calling thread does not move."""
    try:
        return netns_new()
    except FileNotFoundError:                # the C core reads /proc/thread-self/ns/net
        raise no_proc() from None


@contextlib.contextmanager
def scratch() -> Iterator[int]:
    """``create()`` for the duration of a block: yields the fd, closes it."""
    fd = create()
    try:
        yield fd
    finally:
        os.close(fd)


def current_id() -> tuple[int, int]:
    """(device, inode) of the calling thread's network namespace."""
    try:
        st = os.stat(THREAD_NETNS)
    except FileNotFoundError:
        raise no_proc() from None
    return st.st_dev, st.st_ino


def no_proc() -> FileNotFoundError:
    """The error for a process that cannot see its own namespaces."""
    return FileNotFoundError(errno.ENOENT, "the calling thread's network namespace is not "
                             "visible: is /proc mounted?", THREAD_NETNS)


def enter(target: Target) -> None:
    """Move the calling thread into ``target`` (as libcontainer's NetNS
    strategy does); other threads stay where they are."""
    with netns_fd(target) as fd:
        setns_net(fd)


@contextlib.contextmanager
def entered(target: Target) -> Iterator[None]:
    """Run the block with the calling thread inside ``target``, then return
    to the namespace it was in, even if the block raises."""
    try:
        home = os.open(THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise no_proc() from None
    try:
        enter(target)
        try:
            yield
        finally:
            setns_net(home)
    finally:
        os.close(home)
