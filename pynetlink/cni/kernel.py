"""The plugin's use of the library (the reference's ``pkg/ns`` and its
netlink calls): a Handle on the container's namespace, batch failures as
errors, the clean-up of a failed ADD."""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterable, Iterator, Optional

from .. import Handle
from .spec import E_KERNEL, E_UNKNOWN_CONTAINER, CNIError, warn


def open_container(netns_path: str) -> tuple[int, Handle]:
    """(fd, Handle) of the container's namespace; error 3 if there is none.
    The caller closes both."""
    try:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise CNIError(E_UNKNOWN_CONTAINER,
                       f"cannot open the network namespace {netns_path}: {e.strerror}") from None
    try:
        return fd, Handle(netns=fd)
    except OSError as e:
        os.close(fd)
        raise CNIError(E_UNKNOWN_CONTAINER, f"{netns_path} is not a network namespace", str(e)) from None


_shared_host: Optional[Handle] = None


def share_host(handle: Optional[Handle]) -> None:
    """Make ``handle`` (a ``Handle(combine=True)`` in the host namespace)
    the one every command uses for the host (the daemon does, for its
    life); None: each command opens its own (exec mode)."""
    global _shared_host
    _shared_host = handle


@contextlib.contextmanager
def host_handle() -> Iterator[Handle]:
    """A Handle on the host namespace (where the plugin runs) for one
    command: the daemon's shared one — concurrent commands' host requests
    then go to the kernel together — or a fresh one, closed after."""
    if _shared_host is not None:
        yield _shared_host
        return
    with Handle() as host:
        yield host


def fail_on(results: Iterable, allowed: Callable = lambda i, r: False) -> None:
    """Raise the first failure of a batch's results that ``allowed`` does not excuse."""
    for i, r in enumerate(results):
        if r.ok or (r.errno and allowed(i, r)):
            continue
        raise r.exception() or CNIError(E_KERNEL, f"{r.operation}: {r.status}")


def delete_quietly(handle: Handle, name: str) -> None:
    """Delete a link made by a failed ADD (its peer goes with it)."""
    try:
        handle.delete_link(name)
    except Exception as e:                  # noqa: BLE001 - the first error is the one reported
        warn(f"removing {name} failed: {e}")
