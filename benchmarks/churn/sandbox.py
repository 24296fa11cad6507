"""The churn benchmark's sandbox: a private network + mount namespace for the
whole run, named namespaces inside it, and a bounded `ip` runner.

Nothing here touches the machine's own network or its /run/netns: the
runner re-executes itself under ``unshare --net --mount --propagation
private``, mounts a tmpfs of its own on /run/netns, and names its namespaces
there with bind mounts.  When the process ends, the mount namespace goes and
with it every mount and namespace of the run, even after a crash or SIGKILL.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Optional, Sequence

import pynetlink as pn

SANDBOX_ENV = "PN_CHURN_SANDBOX"     # set by the re-exec: "NET_INODE:MNT_INODE" of the caller
RUN_DIR = os.path.realpath("/var/run")   # /run: covered by a tmpfs of our own (cover_run)
NETNS_DIR = os.path.join(RUN_DIR, "netns")  # iproute2's NETNS_RUN_DIR, /var/run/netns
CMD_TIMEOUT = 30.0                   # seconds, any one subprocess (also capped by the run's deadline)

MS_BIND = 0x1000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _ns_inode(kind: str, pid: str = "self") -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


# -- entering the sandbox --------------------------------------------------------------

def ensure_sandbox(script: str, argv: Sequence[str]) -> None:
    """Re-execute under unshare (same pid, no fork) unless already done; once
    inside, check that both namespaces really are new.  Exits on failure."""
    marker = os.environ.get(SANDBOX_ENV)
    if marker is None:
        unshare = shutil.which("unshare")
        if unshare is None:
            sys.exit("churn benchmark: needs `unshare` (util-linux) to run in a private "
                     "network + mount namespace")
        env = dict(os.environ)
        env[SANDBOX_ENV] = f"{_ns_inode('net')}:{_ns_inode('mnt')}"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(unshare, [unshare, "--net", "--mount", "--propagation", "private", "--",
                            sys.executable, script, *argv], env)
    try:
        outer_net, outer_mnt = (int(x) for x in marker.split(":"))
    except ValueError:
        sys.exit(f"churn benchmark: bad {SANDBOX_ENV}={marker!r}")
    if _ns_inode("net") == outer_net or _ns_inode("mnt") == outer_mnt:
        sys.exit("churn benchmark: not inside a private network + mount namespace; refusing to run")
    # the machine's own namespace (pid 1's) must not be ours either
    try:
        if _ns_inode("net", "1") == _ns_inode("net"):
            sys.exit("churn benchmark: still in pid 1's network namespace; refusing to run")
    except OSError:
        pass


def describe_sandbox() -> dict:
    return {"net_ns_inode": _ns_inode("net"), "mnt_ns_inode": _ns_inode("mnt")}


# -- named namespaces -------------------------------------------------------------------

def _mount_tmpfs(path: str) -> None:
    if _libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, b"mode=0755") != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount tmpfs on {path}: {os.strerror(e)}")


def cover_run() -> str:
    """Cover /run (our mount namespace only) with a tmpfs; make the
    namespace directory and a work directory in it; return the latter.
    Whatever the run writes there vanishes with the process."""
    _mount_tmpfs(RUN_DIR)
    os.mkdir(NETNS_DIR, 0o755)
    work = os.path.join(RUN_DIR, "churn")
    os.mkdir(work, 0o700)
    return work


class NetnsDir:
    """A tmpfs on /run/netns (inside the sandbox's mount namespace, after
    ``cover_run``) in which namespaces get names as ``ip netns add`` gives
    them.  ``reset()`` detaches the whole tmpfs, and every namespace named
    in it, at once."""

    def __init__(self):
        self.mounted = False
        _mount_tmpfs(NETNS_DIR)
        self.mounted = True
        self.names: list[str] = []

    def path(self, name: str) -> str:
        return f"{NETNS_DIR}/{name}"

    def add(self, name: str, ipv6: bool = False) -> str:
        """A new, empty network namespace named NAME (``ip netns add NAME``),
        with IPv6 disabled unless ``ipv6`` (see ``disable_ipv6``)."""
        path = self.path(name)
        fd = pn.netns.create()
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
            if _libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND, None):
                e = ctypes.get_errno()
                raise OSError(e, f"bind mount of a namespace on {path}: {os.strerror(e)}")
        finally:
            os.close(fd)
        self.names.append(name)
        if not ipv6:
            disable_ipv6(path)
        return path

    def reset(self) -> None:
        """Drop every namespace named here (lazily: they go when unused)."""
        if self.mounted:
            if _libc.umount2(NETNS_DIR.encode(), MNT_DETACH) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"umount {NETNS_DIR}: {os.strerror(e)}")
            self.mounted = False
        self.names = []
        _mount_tmpfs(NETNS_DIR)
        self.mounted = True

    def listing(self) -> list[str]:
        return sorted(os.listdir(NETNS_DIR))


IPV6_CONF = "/proc/sys/net/ipv6/conf"


def disable_ipv6(path: str) -> bool:
    """net.ipv6.conf.{all,default}.disable_ipv6 = 1 inside the namespace at
    PATH (before any of its links but lo exist).  Otherwise every link that
    comes up gets an fe80:: address and sends DAD, router solicitations and
    MLD reports, which br0 floods to every port: traffic, and softirq work
    that grows with the square of the number of containers and lands in
    whichever contender is running.  False if the kernel has no IPv6."""
    with pn.netns.entered(path):              # /proc/sys/net is the opener's namespace's
        if not os.path.isdir(IPV6_CONF):
            return False
        for conf in ("all", "default"):
            with open(f"{IPV6_CONF}/{conf}/disable_ipv6", "w") as f:
                f.write("1")
    return True


def wait_netns_cleanup(timeout: float = 120.0) -> float:
    """Wait until the kernel has finished destroying the namespaces released
    so far, so that one run's cleanup work (under RTNL) does not land in the
    next run's timing.  Namespaces are destroyed in order by one work item:
    a sentinel namespace released after ours holds one end of a veth pair
    whose other end is here; once that end is gone, the batch ours were in
    was being destroyed; a second sentinel makes sure it also finished.
    Returns the seconds waited."""
    t0 = time.monotonic()
    with pn.Handle(timeout=5.0) as here:         # the calling thread's namespace
        for k in range(2):
            name = f"churnsent{k}"
            fd = pn.netns.create()
            try:
                here.create_veth_pair(name, "peer0", peer_netns=fd)
            finally:
                os.close(fd)                     # the sentinel is released now
            while True:
                try:
                    here.link_index(name)
                except OSError as e:
                    if e.errno == errno.ENODEV:
                        break
                    raise
                if time.monotonic() - t0 > timeout:
                    _delete_quietly(here, name)
                    raise TimeoutError(f"namespace cleanup did not finish within {timeout:.0f} s")
                time.sleep(0.002)
    return time.monotonic() - t0


def _delete_quietly(handle, name: str) -> None:
    try:
        handle.delete_link(name)
    except OSError:
        pass


# -- running ip --------------------------------------------------------------------------

class Deadline:
    """The time bound of one run: every loop and subprocess checks it."""

    def __init__(self, seconds: float, what: str):
        self.end = time.monotonic() + seconds
        self.seconds = seconds
        self.what = what

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise TimeoutError(f"{self.what}: time bound of {self.seconds:.0f} s exceeded")

    def timeout(self, cap: float = CMD_TIMEOUT) -> float:
        left = self.remaining()
        if left <= 0:
            self.check()
        return max(0.1, min(cap, left))


def run(args: Sequence[str], *, input: Optional[str] = None, capture: bool = False,
        timeout: float = CMD_TIMEOUT) -> subprocess.CompletedProcess:
    """One subprocess, bounded in time; raises with its own message on failure."""
    proc = subprocess.run(list(args), input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode:
        cmd = " ".join(args)
        detail = proc.stderr.strip()
        if input is not None and len(input) < 400:
            detail += f" (input: {input.strip()!r})"
        raise RuntimeError(f"{cmd}: exit {proc.returncode}: {detail}")
    return proc


def json_documents(text: str) -> list:
    """Several JSON documents one after another (``ip -j -batch`` prints one per command)."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        doc, i = decoder.raw_decode(text, i)
        out.append(doc)
