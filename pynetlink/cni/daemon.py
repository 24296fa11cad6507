"""``pynetlink-cni daemon``: the CNI plugin as a resident process, answering
the shim's requests (wire.py) on a Unix socket with exactly what exec mode
would print — each request runs ``dispatch.run(environ, stdin)``, the
function exec mode runs, in a thread of its own.

- Only root: the socket's directory is 0700 and the socket 0600 (both
  root's), and each connection's SO_PEERCRED uid must be 0 or an
  ``--allow-uid``; anyone else gets a CNI error (code 100), never silence.
- No state in memory: every command reads the kernel and IPAM's files, as
  in exec mode, so a daemon restarted between ADD and DEL changes nothing.
- A request runs to its end even if its client has gone (nothing watches
  the connection while it runs; the answer's write then fails quietly).
- One request's crash is its CNI error (E_INTERNAL), not the daemon's end.
- SIGTERM or SIGINT: the socket is closed (and its file removed), requests
  in flight finish and are answered, then the process exits 0.
- Socket activation: a listening socket passed by systemd (LISTEN_FDS,
  LISTEN_PID; contrib/systemd/pynetlink-cni.socket) is used as is;
  otherwise the daemon binds ``--socket`` (a stale socket file is removed;
  it refuses to start if another daemon holds or answers on the path).
- One log line per request on stderr (command, container id, ifname,
  duration, outcome); ``--debug`` adds the peer and the answer of failures.
- ``--workers N`` (default: the CPUs, at most 4) processes accept on the
  one socket, each serving requests in threads: Python's work of
  concurrent requests runs on every core.  Nothing is shared between
  workers but the kernel and IPAM's locked files, as between exec-mode
  plugins.  The first process only watches them: a worker that dies is
  replaced, SIGTERM is passed on (each finishes what it has in flight),
  and a worker never outlives it (PR_SET_PDEATHSIG: SIGKILL).
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import importlib
import io
import json
import os
import selectors
import signal
import socket
import stat
import struct
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Mapping, Optional, Union

from .. import Handle
from .._core import die_with_parent
from . import dispatch, kernel, unlist, wire
from .spec import E_INTERNAL, E_KERNEL, PLUGIN, CNIError

REFUSAL = "permission denied: only root (or an allowed uid) may use the pynetlink CNI daemon"
MAX_IN_FLIGHT = 128             # requests served at once by a worker; further connections wait in the backlog
MAX_WORKERS = 64
RESPAWN_PAUSE = 1.0             # seconds between replacements of a worker that keeps dying
BACKLOG = 256
IO_TIMEOUT = 30.0               # seconds a client may take to send its request, or to read the answer
SHUTDOWN_GRACE = 600.0          # seconds SIGTERM waits for requests in flight
SD_LISTEN_FDS_START = 3
_UCRED = struct.Struct("3i")    # struct ucred: pid, uid, gid
THREAD_NETNS = "/proc/thread-self/ns/net"


class StartError(Exception):
    """The daemon cannot start (socket in use, unsafe directory...)."""


# -- per-request stderr ------------------------------------------------------------------------

class StderrRouter(io.TextIOBase):
    """sys.stderr while the daemon runs: what a request's handler writes
    (``spec.warn``, warnings) goes to that request's buffer (a thread-local
    set by ``captured``); anything else to the real stderr."""

    def __init__(self, real):
        self.real = real
        self.local = threading.local()

    def write(self, text: str) -> int:
        buf = getattr(self.local, "buf", None)
        return (buf if buf is not None else self.real).write(text)

    def flush(self) -> None:
        if getattr(self.local, "buf", None) is None:
            self.real.flush()

    @contextlib.contextmanager
    def captured(self):
        """The calling thread's stderr writes, into a StringIO, for the block."""
        self.local.buf = io.StringIO()
        try:
            yield self.local.buf
        finally:
            self.local.buf = None


def router() -> StderrRouter:
    """The process's StderrRouter, installed as sys.stderr on first use."""
    if not isinstance(sys.stderr, StderrRouter):
        sys.stderr = StderrRouter(sys.stderr)
    return sys.stderr


# -- one request -------------------------------------------------------------------------------

def answer(environ: Mapping[str, str], stdin: bytes) -> wire.Response:
    """What exec mode would print and return for this request: stdout and the
    exit code of ``dispatch.run``, and what its handler wrote on stderr.  An
    exception escaping it is this request's E_INTERNAL error."""
    with router().captured() as err:
        try:
            out, status = dispatch.run(environ, stdin)
        except BaseException as e:          # noqa: BLE001 - one request's crash is its own error
            command = environ.get("CNI_COMMAND", "")
            crash = CNIError(E_INTERNAL, f"{command or 'CNI'}: internal error: {type(e).__name__}: {e}")
            out, status = dispatch.error_answer(crash, command, stdin), 1
    return wire.Response(status, out, err.getvalue().encode("utf-8", "surrogateescape"))


def refusal(environ: Mapping[str, str], stdin: bytes) -> wire.Response:
    """The answer to a client whose uid is not allowed: a CNI error, code 100,
    in the request's configuration version."""
    out = dispatch.error_answer(CNIError(E_KERNEL, REFUSAL), environ.get("CNI_COMMAND", ""), stdin)
    return wire.Response(1, out, b"")


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process that connected (SO_PEERCRED)."""
    return _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))


def outcome(response: wire.Response) -> str:
    """"ok", "error CODE" (the CNI error's code), or "exit STATUS"."""
    if response.status == 0:
        return "ok"
    try:
        return f"error {int(json.loads(response.stdout)['code'])}"
    except (ValueError, KeyError, TypeError):
        return f"exit {response.status}"


# -- logging -----------------------------------------------------------------------------------

class Log:
    """One line per event on the real stderr.  Under systemd (JOURNAL_STREAM
    set) each line starts with its syslog priority (``<6>``, ``<4>``: journald
    reads it) and has no timestamp; elsewhere it starts with the UTC time."""

    def __init__(self, stream, debug: bool = False, journald: Optional[bool] = None):
        self.stream, self.debug_on = stream, debug
        self.journald = bool(os.environ.get("JOURNAL_STREAM")) if journald is None else journald
        self.lock = threading.Lock()

    def line(self, text: str, priority: int = 6) -> None:
        if self.journald:
            prefix = f"<{priority}>"
        else:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime())
        with self.lock:
            self.stream.write(f"{prefix}{PLUGIN}: {text}\n")
            self.stream.flush()

    def info(self, text: str) -> None:
        self.line(text, 6)

    def warning(self, text: str) -> None:
        self.line(text, 4)

    def debug(self, text: str) -> None:
        if self.debug_on:
            self.line(text, 7)


def request_line(environ: Mapping[str, str], ms: float, result: str) -> str:
    """The log line of one request."""
    return (f"{environ.get('CNI_COMMAND', '-') or '-'} "
            f"container={environ.get('CNI_CONTAINERID', '') or '-'} "
            f"ifname={environ.get('CNI_IFNAME', '') or '-'} {ms:.1f}ms {result}")


# -- the listening socket ----------------------------------------------------------------------

def activated_socket() -> Optional[socket.socket]:
    """The listening socket systemd passed (LISTEN_PID is us, LISTEN_FDS >= 1), or None."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or not os.environ.get("LISTEN_FDS"):
        return None
    if int(os.environ["LISTEN_FDS"]) != 1:
        raise StartError(f"systemd passed {os.environ['LISTEN_FDS']} sockets; expected one")
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise StartError("the socket systemd passed is not a Unix stream socket")
    sock.set_inheritable(False)
    return sock


def private_directory(path: str) -> None:
    """The socket's directory: made if missing; it must be ours (root's)
    and is set to 0700."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise StartError(f"{directory} must be a directory owned by uid {os.geteuid()}")
    os.chmod(directory, 0o700)


def someone_answers(path: str) -> bool:
    """True if a process listens on the socket file ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        try:
            probe.connect(path)
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return False
            raise
        return True


def clear_stale_socket(path: str) -> None:
    """Remove a socket file nobody answers on; refuse anything else there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise StartError(f"{path} exists and is not a socket")
    if someone_answers(path):
        raise StartError(f"another daemon answers on {path}")
    os.unlink(path)


def lock_path(path: str) -> int:
    """An exclusive lock on ``PATH.lock``, held for the daemon's life (its fd)."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StartError(f"another daemon holds {path}.lock") from None
    return fd


def bind_socket(path: str) -> socket.socket:
    """A listening socket at ``path`` (mode 0600), a stale socket file replaced."""
    clear_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)               # born 0600: no window where others may connect
    try:
        sock.bind(path)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(BACKLOG)
    return sock


def release_socket(listener: socket.socket, path: Optional[str],
                   inode: Optional[tuple[int, int]]) -> None:
    """Close ``listener``; remove its file ``path`` if it is still the one
    bound (``inode``: another daemon may have replaced it)."""
    if path is not None and inode is not None and file_identity(path) == inode:
        with contextlib.suppress(OSError):
            os.unlink(path)
    listener.close()


def file_identity(path: str, follow: bool = False) -> Optional[tuple[int, int]]:
    """(st_dev, st_ino) of a file (``follow``: of what the link names, as
    for a namespace: /proc/thread-self/ns/net), None if it is gone."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


# -- the server --------------------------------------------------------------------------------

class Claim:
    """Who serves a connection handed to the thread pool: the pool thread,
    or ``accept_one`` when the pool could start no thread (the pool may
    still run the queued call later) — the first to ``take`` it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken = False

    def take(self) -> bool:
        with self.lock:
            first, self.taken = not self.taken, True
            return first


class Daemon:
    """Accepts connections on ``listener`` and serves each in a thread of a
    pool (at most MAX_IN_FLIGHT at once; a thread that has answered takes
    the next connection, none is started per request) until ``stop``;
    ``serve`` returns once the last request in flight is answered."""

    def __init__(self, listener: socket.socket, log: Log, allow_uids: frozenset = frozenset(),
                 path: Optional[str] = None):
        self.listener, self.log, self.path = listener, log, path
        self.inode = file_identity(path) if path else None     # the socket file we bound
        self.allowed = frozenset({0}) | allow_uids
        self.slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self.home = file_identity(THREAD_NETNS, follow=True)
        self.stranded = False
        self.pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="pynetlink-cni-request")
        self.in_flight: set[Future] = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_w.setblocking(False)          # a signal handler writes it: never block there
        self.listener.setblocking(False)        # a connection gone before accept() blocks nothing

    def stop(self, *_args) -> None:
        """Stop accepting (safe from a signal handler: it only sets a flag and wakes the loop)."""
        self.stopping = True
        with contextlib.suppress(OSError):
            self.wake_w.send(b"\0")

    def serve(self) -> bool:
        """Serve until ``stop``; True if every request in flight then finished.
        The requests share one host-namespace Handle whose concurrent
        exchanges are combined (``kernel.host_handle``)."""
        preload()
        with Handle(combine=True) as host:
            kernel.share_host(host)
            try:
                with selectors.DefaultSelector() as sel:
                    sel.register(self.listener, selectors.EVENT_READ)
                    sel.register(self.wake_r, selectors.EVENT_READ)
                    while not self.stopping:
                        if any(key.fileobj is self.listener for key, _ in sel.select()):
                            self.accept_one()
                self.close_listener()
                finished = self.drain()
                # deletions answered early (unlist.py) still finishing in the kernel
                finished = unlist.finish(time.monotonic() + SHUTDOWN_GRACE) and finished
                return finished and not self.stranded
            finally:
                kernel.share_host(None)

    def accept_one(self) -> None:
        if not self.slots.acquire(timeout=0.2):
            return                              # all slots busy: the client waits in the backlog
        try:
            conn, _ = self.listener.accept()
        except OSError as e:
            self.slots.release()
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EINTR):
                self.log.warning(f"accept: {e}")
                time.sleep(0.05)                # EMFILE and the like: do not spin
            return
        claim = Claim()
        try:
            future = self.pool.submit(self.connection, conn, claim)
        except RuntimeError as e:               # no thread to be had: this client is dropped...
            if claim.take():                    # ...unless a pool thread took it meanwhile
                conn.close()
                self.slots.release()
                self.log.warning(f"cannot start a thread for a request: {e}")
            return
        with self.lock:
            self.in_flight.add(future)
        future.add_done_callback(self.answered)

    def answered(self, future: Future) -> None:
        with self.lock:
            self.in_flight.discard(future)

    def connection(self, conn: socket.socket, claim: "Claim") -> None:
        """One connection: the request read, checked, answered, logged.  A
        pool thread left in another network namespace by it (its way back
        refused: never seen, but then every later request it served would
        run there) stops the daemon, which a worker's parent replaces
        (systemd restarts a single-process daemon)."""
        if not claim.take():
            return                              # dropped by accept_one: no thread was to be had
        try:
            with conn:
                self.handle(conn)
        except Exception as e:                  # noqa: BLE001 - never the daemon's end
            self.log.warning(f"request failed: {type(e).__name__}: {e}")
        finally:
            self.slots.release()
            if file_identity(THREAD_NETNS, follow=True) != self.home:
                self.log.line("a request thread is stranded in another network namespace: stopping", 3)
                self.stranded = True
                self.stop()

    def handle(self, conn: socket.socket) -> None:
        pid, uid, _ = peer_credentials(conn)
        conn.settimeout(IO_TIMEOUT)
        try:
            environ, stdin = wire.read_request(conn)
        except (wire.WireError, OSError) as e:
            self.log.warning(f"malformed request from pid {pid} uid {uid}: {e}")
            return
        start = time.monotonic()
        if uid in self.allowed:
            response = answer(environ, stdin)
            result = outcome(response)
        else:
            response, result = refusal(environ, stdin), f"refused uid {uid}"
        ms = (time.monotonic() - start) * 1000
        self.log.line(request_line(environ, ms, result), 6 if response.status == 0 else 4)
        self.log.debug(f"  peer pid {pid} uid {uid}; stdout {response.stdout[:2000]!r}; "
                       f"stderr {response.stderr[:2000]!r}")
        try:
            conn.sendall(wire.encode_response(response.status, response.stdout, response.stderr))
        except OSError as e:
            self.log.debug(f"  the client left before the answer: {e.strerror or e}")

    def close_listener(self) -> None:
        """Stop accepting: connections not yet accepted are reset (the shim
        falls back to exec for them); the socket file is removed."""
        release_socket(self.listener, self.path, self.inode)
        self.wake_r.close()
        self.wake_w.close()

    def drain(self) -> bool:
        """Wait (at most SHUTDOWN_GRACE) for the requests in flight; True if all finished."""
        with self.lock:
            pending = list(self.in_flight)
        _, not_done = futures_wait(pending, SHUTDOWN_GRACE)
        self.pool.shutdown(wait=not not_done)   # its threads idle: they end at once
        return not not_done


# -- worker processes --------------------------------------------------------------------------

class Workers:
    """``count`` worker processes serving ``listener`` (each a ``Daemon``),
    watched by this one until ``stop``: a worker that exits meanwhile is
    replaced; on ``stop`` each gets SIGTERM and is waited for."""

    def __init__(self, listener: socket.socket, log: Log, allow_uids: frozenset, count: int,
                 path: Optional[str] = None, keep_closed: tuple = ()):
        self.listener, self.log, self.allow_uids, self.count = listener, log, allow_uids, count
        self.path, self.inode = path, file_identity(path) if path else None
        self.keep_closed = keep_closed          # fds a worker closes (the path's lock)
        self.pids: dict[int, int] = {}          # pid -> slot
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def stop(self, *_args) -> None:
        """Stop (from a signal handler: sets a flag, wakes the loop)."""
        self.stopping = True
        self.wake()

    def wake(self, *_args) -> None:
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"\0")

    def spawn(self, slot: int) -> None:
        """Start the worker of ``slot``.  SIGTERM stays blocked across the
        fork until the worker's own handler is in: one that comes meanwhile
        (``stop`` right after a start) waits, pending, and is not lost."""
        parent = os.getpid()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            pid = os.fork()
            if pid == 0:
                os._exit(self.worker(parent, mask))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.pids[pid] = slot

    def worker(self, parent: int, mask: set) -> int:
        """A worker's life (in the child, SIGTERM blocked until its handler
        is in, then ``mask`` again): serve until SIGTERM; its exit code."""
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            die_with_parent(signal.SIGKILL)
            if os.getppid() != parent:                       # it ended before the line above
                return 1
            for fd in (self.wake_r, self.wake_w, *self.keep_closed):
                os.close(fd)
            daemon = Daemon(self.listener, self.log, self.allow_uids)
            signal.signal(signal.SIGTERM, daemon.stop)
            signal.signal(signal.SIGINT, signal.SIG_IGN)     # a terminal's ^C reaches us via the parent
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a SIGTERM that came meanwhile: now
            return 0 if daemon.serve() else 1
        except BaseException as e:                           # noqa: BLE001 - never back into the parent's code
            with contextlib.suppress(Exception):
                self.log.line(f"worker {os.getpid()} failed: {type(e).__name__}: {e}", 3)
            return 1

    def reap(self) -> list:
        """(pid, slot, status) of each worker that has exited."""
        ended = []
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.pids:
                ended.append((pid, self.pids.pop(pid), os.waitstatus_to_exitcode(status)))
        return ended

    def serve(self) -> bool:
        """Run the workers until ``stop``; True if each then exited 0."""
        preload()
        signal.signal(signal.SIGCHLD, self.wake)
        for slot in range(self.count):
            self.spawn(slot)
        respawned = 0.0
        while not self.stopping:
            with contextlib.suppress(InterruptedError):
                selectors_wait(self.wake_r, 1.0)
            for pid, slot, code in self.reap():
                self.log.warning(f"worker {pid} exited ({code}); starting another")
                time.sleep(max(0.0, respawned + RESPAWN_PAUSE - time.monotonic()))
                respawned = time.monotonic()
                if not self.stopping:
                    self.spawn(slot)
        release_socket(self.listener, self.path, self.inode)   # new clients fall back at once
        return self.finish()

    def finish(self) -> bool:
        """SIGTERM to every worker; True if all exit 0 within the grace."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        ok = True
        deadline = time.monotonic() + SHUTDOWN_GRACE + 5
        while self.pids and time.monotonic() < deadline:
            for _, _, code in self.reap():
                ok = ok and code == 0
            if self.pids:
                with contextlib.suppress(InterruptedError):
                    selectors_wait(self.wake_r, 0.2)
        for pid in self.pids:                               # still running: not ours to leave behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.close(self.wake_r)
        os.close(self.wake_w)
        return ok and not self.pids


def selectors_wait(fd: int, timeout: float) -> None:
    """Wait up to ``timeout`` s for ``fd`` to be readable, then drain it."""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        if sel.select(timeout):
            with contextlib.suppress(BlockingIOError):
                os.read(fd, 4096)


def default_workers() -> int:
    """The CPUs this process may run on, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def preload() -> None:
    """Import every command's module now, not under the first requests."""
    modules = {m for table in dispatch.HANDLERS.values() for m, _ in table.values()}
    for module in modules | {m for m, _ in dispatch.LIFECYCLE.values()} | {"delegate", "result", "ipmasq"}:
        importlib.import_module(f"{__package__}.{module}")


def uid_arg(text: str) -> int:
    uid = int(text)
    if not 0 <= uid < 2**32 - 1:
        raise argparse.ArgumentTypeError(f"{text} is not a uid")
    return uid


def workers_arg(text: str) -> int:
    n = int(text)
    if not 1 <= n <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{text} workers: give 1 to {MAX_WORKERS}")
    return n


def parse_args(argv: list) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"{PLUGIN} daemon",
                                description="Serve CNI requests from the pynetlink-cni shim.")
    p.add_argument("--socket", default=None, metavar="PATH",
                   help=f"the socket to bind (default: ${wire.SOCKET_ENV} or {wire.DEFAULT_SOCKET}); "
                        "ignored under socket activation")
    p.add_argument("--debug", action="store_true", help="log more per request")
    p.add_argument("--allow-uid", type=uid_arg, action="append", default=[], metavar="UID",
                   help="a non-root uid allowed to send requests (repeatable)")
    p.add_argument("--workers", type=workers_arg, default=None, metavar="N",
                   help="processes serving requests (default: the CPUs, at most 4; "
                        "1: this process serves them itself)")
    return p.parse_args(argv)


def open_listener(path: str) -> tuple[socket.socket, Optional[str], Optional[int]]:
    """(listening socket, the path bound or None under socket activation,
    the lock's fd or None): systemd's socket if it passed one, else ``path``
    bound in its private directory, under its lock."""
    listener = activated_socket()
    if listener is not None:
        return listener, None, None
    private_directory(path)
    lock_fd = lock_path(path)
    return bind_socket(path), path, lock_fd


def main(argv: list) -> int:
    """``pynetlink-cni daemon [--socket PATH] [--debug] [--allow-uid UID]``."""
    args = parse_args(argv)
    log = Log(sys.stderr, args.debug)
    router()
    try:
        listener, path, lock_fd = open_listener(os.path.abspath(args.socket or wire.socket_path()))
    except (StartError, OSError) as e:
        log.line(f"cannot start: {e}", 3)
        return 1
    workers = args.workers or default_workers()
    allowed = frozenset(args.allow_uid)
    server: Union[Daemon, Workers]
    if workers == 1:
        server = Daemon(listener, log, allowed, path)
    else:
        server = Workers(listener, log, allowed, workers, path,
                         keep_closed=(lock_fd,) if lock_fd is not None else ())
    signal.signal(signal.SIGTERM, server.stop)
    signal.signal(signal.SIGINT, server.stop)
    where = path or f"fd {SD_LISTEN_FDS_START} (socket activation)"
    log.info(f"listening on {where}; allowed uids {sorted(allowed | {0})}; {workers} worker(s)")
    unlist.EARLY = True                 # DELs answer once the kernel has unlisted their links
    finished = server.serve()
    log.info("stopped" if finished else f"stopped with requests still running after {SHUTDOWN_GRACE:.0f} s")
    if lock_fd is not None:
        os.close(lock_fd)
    return 0 if finished else 1

