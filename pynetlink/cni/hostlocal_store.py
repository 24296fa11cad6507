"""host-local's on-disk store, shared with the reference plugin (its
``backend/disk``, containernetworking-plugins v1.1.1), so that both can
allocate on one network without handing out an address twice:

- the directory ``<dataDir>/<network name>`` (dataDir default
  ``/var/lib/cni/networks``), made with mode 0755 if missing;
- one file per address held, named by the address (Go's text form), mode
  0644, holding ``<container id>\\r\\n<ifname>`` (no newline at the end);
  a file holding only the container id (older versions) counts as that
  container's for any ifname;
- ``last_reserved_ip.<N>``: the last address handed out from range set N
  (allocation continues after it, round-robin);
- ``lock``: an empty file (created with mode 0750 as the reference's
  go-filemutex does) that every step holds ``flock(LOCK_EX)`` on: each
  range set's allocation, each release, each search.
"""
from __future__ import annotations

import errno
import fcntl
import os
from typing import Callable, Iterator, Optional

from .hostlocal_ranges import Address, HostLocalError, go_address

DEFAULT_DATA_DIR = "/var/lib/cni/networks"
LAST_IP_PREFIX = "last_reserved_ip."
LINE_BREAK = "\r\n"
LOCK_NAME = "lock"


def go_error(e: OSError, op: str) -> HostLocalError:
    """An OSError worded as Go's os.PathError ("open /x: permission denied")."""
    text = (e.strerror or str(e))
    return HostLocalError(f"{op} {e.filename}: {text[:1].lower()}{text[1:]}")


class Store:
    """One network's directory, its lock file open (``close`` it, or use
    ``with``).  ``lock()`` is a context manager holding the flock."""

    def __init__(self, network: str, data_dir: str = ""):
        self.dir = os.path.join(data_dir or DEFAULT_DATA_DIR, network)
        try:
            os.makedirs(self.dir, 0o755, exist_ok=True)
        except OSError as e:
            raise go_error(e, "mkdir") from None
        path = os.path.join(self.dir, LOCK_NAME)
        try:
            self.lock_fd = os.open(path, os.O_CREAT | os.O_RDONLY | os.O_CLOEXEC, 0o750)
        except OSError as e:
            raise go_error(e, "open") from None

    def close(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def lock(self) -> "Locked":
        return Locked(self.lock_fd)

    # -- allocations (call with the lock held) -------------------------------------------------

    def reserve(self, container_id: str, ifname: str, address: Address, range_id: int) -> bool:
        """Take ``address`` for (container_id, ifname) if no file holds it
        (O_EXCL); note it as range set ``range_id``'s last.  False if taken."""
        path = os.path.join(self.dir, str(address))
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return False
        except OSError as e:
            raise go_error(e, "open") from None
        try:
            write_all(fd, f"{container_id.strip()}{LINE_BREAK}{ifname}".encode())
        except OSError as e:
            os.unlink(path)
            raise go_error(e, "write") from None
        finally:
            os.close(fd)
        self.write_last_reserved(address, range_id)
        return True

    def write_last_reserved(self, address: Address, range_id: int) -> None:
        """``last_reserved_ip.N`` := the address.  Written over and then cut
        to length, not truncated first: the bytes are those of the
        reference's WriteFile, without ext4 flushing a file truncated to
        zero on close (auto_da_alloc: milliseconds per ADD)."""
        path = os.path.join(self.dir, f"{LAST_IP_PREFIX}{range_id}")
        data = str(address).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise go_error(e, "open") from None
        try:
            write_all(fd, data)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)

    def last_reserved(self, range_id: int) -> Optional[Address]:
        """Range set ``range_id``'s last address handed out, if recorded and valid."""
        try:
            with open(os.path.join(self.dir, f"{LAST_IP_PREFIX}{range_id}"), "rb") as f:
                return go_address(f.read().decode())
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    def release_by_id(self, container_id: str, ifname: str, passes: int = 1) -> None:
        """The reference's ReleaseByID run ``passes`` times, from one read of
        the directory: each pass removes the files of (container_id, ifname)
        or, if there are none (left), the old-style files holding the
        container id alone."""
        self.release_many([(container_id, ifname, passes)])

    def release_many(self, owners: list) -> None:
        """``release_by_id`` for each (container_id, ifname, passes) of
        ``owners``, in order, all from one read of the directory."""
        entries = list(self.entries())
        gone: set = set()
        for container_id, ifname, passes in owners:
            for _ in range(passes):
                for match in owner_matches(container_id, ifname):
                    hits = [path for path, text in entries if text == match and path not in gone]
                    gone.update(hits)
                    if remove(hits):
                        break

    def get_by_id(self, container_id: str, ifname: str) -> list:
        """The addresses (file names that are addresses) held by (container_id,
        ifname), or by container_id in the old style."""
        matches = owner_matches(container_id, ifname)
        return [address for _, address, _ in self.allocations(lambda text: text in matches)]

    def find_by_id(self, container_id: str, ifname: str) -> bool:
        """Whether any file (address or not) holds (container_id, ifname) or,
        old style, container_id alone (the reference's CHECK)."""
        matches = owner_matches(container_id, ifname)
        return any(text in matches for _, text in self.entries())

    def allocations(self, wanted: Callable[[str], bool] = lambda text: True) -> Iterator[tuple]:
        """(path, address, stripped text) of each file named by an address
        whose text is ``wanted``."""
        for path, text in self.entries():
            if not wanted(text):
                continue
            try:
                yield path, go_address(os.path.basename(path)), text
            except ValueError:
                continue

    def entries(self) -> Iterator[tuple]:
        """(path, stripped text) of every regular file under the directory,
        in Go's filepath.Walk order (lexical, depth first); unreadable ones skipped."""
        for path in walk(self.dir):
            try:
                data = read_small(path)
            except OSError:
                continue
            yield path, data.decode("utf-8", "replace").strip(GO_SPACE)


MAX_FILE = 1 << 16              # bytes read of a store file: an owner's text is far shorter


def read_small(path: str) -> bytes:
    """The file's first MAX_FILE bytes (a longer one matches no owner)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)     # a FIFO: no wait
    try:
        return os.read(fd, MAX_FILE)        # a regular file: one read gives it whole, or its start
    finally:
        os.close(fd)


GO_SPACE = " \t\n\r\v\f\x85\xa0"        # what Go's strings.TrimSpace strips (ASCII and Latin-1)


def owner_matches(container_id: str, ifname: str) -> tuple:
    """The texts that mark a file as (container_id, ifname)'s: the current
    form, then the old one (container id alone)."""
    cid = container_id.strip(GO_SPACE)
    return (f"{cid}{LINE_BREAK}{ifname}", cid)


def remove(paths: list) -> int:
    """Unlink each of ``paths`` (one already gone is skipped); how many went."""
    removed = 0
    for path in paths:
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


def walk(top: str, depth: int = 0) -> Iterator[str]:
    """Regular files under ``top`` in lexical order, directories entered
    where they sort (symbolic links not followed into); bounded depth."""
    try:
        with os.scandir(top) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if depth < MAX_DEPTH:
                yield from walk(entry.path, depth + 1)
        else:
            yield entry.path


MAX_DEPTH = 16


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Locked:
    """``with store.lock():`` flock(LOCK_EX) on the lock file, released on exit."""

    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self) -> None:
        for _ in range(1000):                   # EINTR only; a signal per retry at most
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
                return
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno != errno.EINTR:
                    raise go_error(e, "flock") from None
        raise HostLocalError("flock: interrupted too often")

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
