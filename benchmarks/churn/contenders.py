"""The contenders of the churn benchmark.

Each sets up N containers and tears them down again, in two timed phases
called by run.py with the calling thread inside the run's host namespace
(``pn.netns.entered``; subprocesses forked from that thread start there too).
Per container the result is the same for everyone (checked by verify.py):

    host namespace:  HOST (veth) on br0, MTU 1450, up
    container:       eth0 (HOST's peer) MTU 1450, up, 192.0.2.X/24,
                     default via 192.0.2.1; lo up
    --dual-stack:    eth0 also 2001:db8::Y/64, default via 2001:db8::1
                     (br0 has 2001:db8::1/64)

Paths: "in-place" creates the peer directly inside the container's
namespace; "move" is libcontainer v1.2.0's path (create the pair in the host
namespace, move the child, configure it inside: rename to eth0 etc.).
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import select
import shutil
import subprocess
from dataclasses import dataclass
from typing import Optional

import pynetlink as pn

from sandbox import Deadline, run

BRIDGE = "br0"
MTU = 1450
GATEWAY = "192.0.2.1"
PREFIXLEN = 24
GATEWAY6 = "2001:db8::1"          # br0's IPv6 address under --dual-stack
PREFIXLEN6 = 64
FLOOR_BATCH = 256            # RTM_NEWLINK messages per sendmsg() in the C floor

try:                                     # the `bench` extra: pip install -e '.[bench]'
    import pyroute2
    from pyroute2 import IPRoute
except ImportError as e:                 # noqa: F841 - reported as "not available"
    pyroute2 = None
    IPRoute = None
    _PYROUTE2_ERROR = f"pyroute2 is not importable ({e}); pip install -e '.[bench]'"


def lab_module():
    """(``pynetlink.cli.lab``, None) when it imports: the bulk wiring of the
    ``pynetlink churn`` command, which the pynetlink contenders run; else
    (None, why not)."""
    try:
        import importlib
        return importlib.import_module("pynetlink.cli.lab"), None
    except Exception as e:                   # noqa: BLE001 - anything: not available
        return None, f"import pynetlink.cli.lab failed: {type(e).__name__}: {e}"


@dataclass(frozen=True)
class Container:
    index: int
    name: str           # its namespace's name (/run/netns/NAME)
    path: str           # /run/netns/NAME
    address: str        # 192.0.2.X (no prefix)
    host: str           # host end's name, for contenders that choose names
    child: str          # the child's name before it becomes eth0 (move path)
    address6: str = ""  # 2001:db8::Y (no prefix) under --dual-stack, else ""

    @property
    def cidr(self) -> str:
        return f"{self.address}/{PREFIXLEN}"

    @property
    def cidr6(self) -> str:
        return f"{self.address6}/{PREFIXLEN6}"

    @property
    def broadcast(self) -> str:
        return self.address.rsplit(".", 1)[0] + ".255"


@dataclass
class Context:
    host_ns: str                 # the host namespace's name
    host_path: str
    containers: list
    deadline: Deadline
    workdir: str                 # a private tmpfs directory
    group: int                   # IFLA_GROUP for contenders that tag host ends
    floor_binary: Optional[str] = None


def ipv6_address(i: int) -> str:
    """The i-th container's IPv6 address under --dual-stack: 2001:db8::Y with
    Y = i + 2 in hex (unique on br0's /64, never the gateway's ::1)."""
    return f"2001:db8::{i + 2:x}"


def bridge_commands(dual_stack: bool) -> str:
    """`ip -batch` input that makes br0 in the host namespace (untimed):
    192.0.2.1/24, and 2001:db8::1/64 under --dual-stack, up."""
    v6 = f"addr add {GATEWAY6}/{PREFIXLEN6} dev {BRIDGE}\n" if dual_stack else ""
    return (f"link add {BRIDGE} type bridge\naddr add {GATEWAY}/{PREFIXLEN} dev {BRIDGE}\n"
            f"{v6}link set {BRIDGE} up\n")


class Contender:
    id = ""
    path = ""                    # "in-place" or "move"
    self_timed = False           # True: the phases report their own times (the C floor)

    @classmethod
    def unavailable(cls) -> Optional[str]:
        """None, or why this contender cannot run here."""
        return None

    def prepare(self, ctx: Context) -> None:
        """Untimed, before the setup phase."""

    def setup(self, ctx: Context) -> Optional[dict]:
        raise NotImplementedError

    def teardown(self, ctx: Context) -> Optional[dict]:
        raise NotImplementedError

    def host_names(self, ctx: Context) -> list:
        return [c.host for c in ctx.containers]

    def group(self, ctx: Context) -> Optional[int]:
        """The IFLA_GROUP host ends must carry, if the contender uses one."""
        return None

    def details(self) -> dict:
        """Extra facts for the JSON report."""
        return {}

    def close(self) -> None:
        """Untimed, always: release handles, processes."""


# -- iproute2 --------------------------------------------------------------------------

def ip_host_commands(c: Container, path: str) -> list:
    if path == "in-place":
        return [["link", "add", c.host, "mtu", str(MTU), "master", BRIDGE, "up", "type", "veth",
                 "peer", "name", "eth0", "mtu", str(MTU), "netns", c.name]]
    return [["link", "add", c.host, "type", "veth", "peer", "name", c.child],
            ["link", "set", c.host, "master", BRIDGE],
            ["link", "set", c.host, "mtu", str(MTU)],
            ["link", "set", c.child, "mtu", str(MTU)],
            ["link", "set", c.host, "up"],
            ["link", "set", c.child, "netns", c.name]]


def ip_container_commands(c: Container, path: str) -> list:
    rename = [] if path == "in-place" else [["link", "set", c.child, "name", "eth0"]]
    v6 = [["addr", "add", c.cidr6, "dev", "eth0"],
          ["route", "add", "default", "via", GATEWAY6]] if c.address6 else []
    return ([["link", "set", "lo", "up"]] + rename +
            [["link", "set", "eth0", "up"],
             ["addr", "add", c.cidr, "brd", "+", "dev", "eth0"],
             ["route", "add", "default", "via", GATEWAY]] + v6)


def _batch(commands: list) -> str:
    return "".join(" ".join(cmd) + "\n" for cmd in commands)


class IpPerOp(Contender):
    """One `ip` process per operation: host side in the host namespace,
    container side with `ip -n NS`."""
    id = "ip"

    def __init__(self, path: str):
        self.path = path

    @classmethod
    def unavailable(cls):
        return None if shutil.which("ip") else "no `ip` (iproute2)"

    def setup(self, ctx):
        for c in ctx.containers:
            ctx.deadline.check()
            for cmd in ip_host_commands(c, self.path):
                run(["ip", *cmd], timeout=ctx.deadline.timeout())
            for cmd in ip_container_commands(c, self.path):
                run(["ip", "-n", c.name, *cmd], timeout=ctx.deadline.timeout())

    def teardown(self, ctx):
        for c in ctx.containers:
            ctx.deadline.check()
            run(["ip", "link", "del", c.host], timeout=ctx.deadline.timeout())


class IpBatch(Contender):
    """The same commands as IpPerOp, through `ip -batch -`: one process for
    the host side, one `ip -n NS -batch -` per container namespace."""
    id = "ip-batch"

    def __init__(self, path: str):
        self.path = path

    unavailable = IpPerOp.unavailable

    def setup(self, ctx):
        host = [cmd for c in ctx.containers for cmd in ip_host_commands(c, self.path)]
        run(["ip", "-batch", "-"], input=_batch(host),
            timeout=ctx.deadline.timeout(ctx.deadline.seconds))
        for c in ctx.containers:
            ctx.deadline.check()
            run(["ip", "-n", c.name, "-batch", "-"],
                input=_batch(ip_container_commands(c, self.path)), timeout=ctx.deadline.timeout())

    def teardown(self, ctx):
        run(["ip", "-batch", "-"], input=_batch([["link", "del", c.host] for c in ctx.containers]),
            timeout=ctx.deadline.timeout(ctx.deadline.seconds))


# -- pyroute2 --------------------------------------------------------------------------

class Pyroute2(Contender):
    """pyroute2's IPRoute: one handle in the host namespace, one per
    container namespace, either ``IPRoute(netns=PATH)`` (it forks a helper
    that makes the socket there) or opened while the calling thread is
    inside the namespace (no fork; the socket stays there)."""

    def __init__(self, path: str, fork: bool):
        self.path = path
        self.fork = fork
        self.id = "pyroute2-fork" if fork else "pyroute2"
        self.ipr = None

    @classmethod
    def unavailable(cls):
        return None if pyroute2 is not None else _PYROUTE2_ERROR

    def _open_in(self, c: Container):
        if self.fork:
            return IPRoute(netns=c.path, flags=0)        # flags=0: never create it
        with pn.netns.entered(c.path):
            return IPRoute()

    def setup(self, ctx):
        ipr = self.ipr = IPRoute()                       # in the host namespace
        bridge = ipr.link_lookup(ifname=BRIDGE)[0]
        for c in ctx.containers:
            ctx.deadline.check()
            if self.path == "in-place":
                ipr.link("add", ifname=c.host, kind="veth", mtu=MTU, master=bridge, state="up",
                         peer={"ifname": "eth0", "mtu": MTU, "net_ns_fd": c.path})
            else:
                ipr.link("add", ifname=c.host, kind="veth", peer=c.child)
                ipr.link("set", ifname=c.host, master=bridge)
                ipr.link("set", ifname=c.host, mtu=MTU)
                ipr.link("set", ifname=c.child, mtu=MTU)
                ipr.link("set", ifname=c.host, state="up")
                ipr.link("set", ifname=c.child, net_ns_fd=c.path)
            ns = self._open_in(c)
            try:
                ns.link("set", ifname="lo", state="up")
                if self.path == "move":
                    ns.link("set", index=ns.link_lookup(ifname=c.child)[0], ifname="eth0")
                ns.link("set", ifname="eth0", state="up")
                index = ns.link_lookup(ifname="eth0")[0]
                ns.addr("add", index=index, address=c.address, prefixlen=PREFIXLEN,
                        broadcast=c.broadcast)
                ns.route("add", dst="default", gateway=GATEWAY)
                if c.address6:
                    ns.addr("add", index=index, address=c.address6, prefixlen=PREFIXLEN6,
                            family=socket.AF_INET6)
                    ns.route("add", dst="::/0", gateway=GATEWAY6, family=socket.AF_INET6)
            finally:
                ns.close()

    def teardown(self, ctx):
        for c in ctx.containers:
            ctx.deadline.check()
            self.ipr.link("del", ifname=c.host)

    def close(self):
        if self.ipr is not None:
            self.ipr.close()
            self.ipr = None


# -- the C floor -----------------------------------------------------------------------

FLOOR_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor.c")


def compile_floor(workdir: str) -> tuple:
    """(path of the binary, None) or (None, why not).  gcc -O2, at run time."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        return None, "no C compiler (gcc)"
    out = os.path.join(workdir, "floor")
    proc = subprocess.run([gcc, "-O2", "-Wall", "-Wextra", "-o", out, FLOOR_SOURCE],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if proc.returncode:
        raise RuntimeError(f"compiling floor.c failed:\n{proc.stderr}")
    return out, None


class Floor(Contender):
    """benchmarks/churn/floor.c: raw rtnetlink, no library, in place only;
    one group delete for the whole teardown.  Its phases are timed by the
    program itself (CLOCK_MONOTONIC, getrusage)."""
    id = "floor"
    path = "in-place"
    self_timed = True

    def __init__(self, path: str = "in-place"):
        assert path == "in-place"
        self.proc: Optional[subprocess.Popen] = None
        self.pending = b""
        self.process_cpu = None

    def prepare(self, ctx):
        if ctx.floor_binary is None:
            raise RuntimeError("the floor binary was not built")
        self.listfile = os.path.join(ctx.workdir, "floor.list")
        with open(self.listfile, "w") as f:
            for c in ctx.containers:
                f.write(f"{c.host} {c.path} {c.address} {c.address6}".rstrip() + "\n")

    def group(self, ctx):
        return ctx.group

    def _line(self, deadline: Deadline) -> dict:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.pending:
            ready, _, _ = select.select([fd], [], [], deadline.timeout(deadline.seconds))
            if not ready:
                deadline.check()
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                err = self._finish(deadline)
                raise RuntimeError(f"floor exited ({err}) before reporting")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def _finish(self, deadline: Deadline) -> str:
        """Wait for the program; 'exit N: its stderr'."""
        try:
            _, err = self.proc.communicate(timeout=deadline.timeout())
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return f"exit {self.proc.returncode}: {err.decode(errors='replace').strip()}"

    def setup(self, ctx):
        timeout = max(1, int(ctx.deadline.remaining()))
        self.proc = subprocess.Popen(
            [ctx.floor_binary, BRIDGE, str(MTU), str(ctx.group), self.listfile,
             str(FLOOR_BATCH), str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        report = self._line(ctx.deadline)
        if report.get("phase") != "setup" or report.get("n") != len(ctx.containers):
            raise RuntimeError(f"floor: unexpected report {report}")
        self.setup_report = report
        return report

    def teardown(self, ctx):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        report = self._line(ctx.deadline)
        status = self._finish(ctx.deadline)
        if self.proc.returncode != 0:
            raise RuntimeError(f"floor: {status}")
        if report.get("phase") != "teardown":
            raise RuntimeError(f"floor: unexpected report {report}")
        self.teardown_report = report
        return report

    def details(self):
        return {k: getattr(self, k) for k in ("setup_report", "teardown_report") if hasattr(self, k)}

    def close(self):
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()                 # this run's own child, by its pid
            self.proc.communicate()
        self.proc = None


# -- pynetlink -------------------------------------------------------------------------

def _network(c: Container) -> pn.Network:
    """The network ``pynetlink churn`` gives its c.index-th container: the
    same as every contender's (verify.py checks it); under --dual-stack with
    ``ipv6_address`` and ``ipv6_gateway`` too."""
    net = lab_module()[0].container_network(c.index)
    if c.address6:
        net = dataclasses.replace(net, ipv6_address=c.cidr6, ipv6_gateway=GATEWAY6)
    return net


class PynetlinkStrategies(Contender):
    """libcontainer's strategies: ``Veth.create`` (host side, in the host
    namespace) + ``Loopback.initialize`` + ``Veth.initialize`` (container side,
    from outside with ``netns=``); teardown ``delete_link(veth_host)`` per
    container.  "in-place": ``Veth()``; "move": ``Veth(fast=False)``."""
    id = "pynetlink"

    def __init__(self, path: str):
        self.path = path

    def prepare(self, ctx):
        self.networks = [_network(c) for c in ctx.containers]
        self.states = [pn.NetworkState() for _ in ctx.containers]

    def setup(self, ctx):
        veth, loopback = pn.Veth(fast=self.path == "in-place"), pn.Loopback()
        for c, net, state in zip(ctx.containers, self.networks, self.states):
            ctx.deadline.check()
            veth.create(net, None, state, netns=c.path)
            loopback.initialize(net, state, netns=c.path)
            veth.initialize(net, state, netns=c.path)

    def teardown(self, ctx):
        for state in self.states:
            ctx.deadline.check()
            pn.delete_link(state.veth_host)

    def host_names(self, ctx):
        return [s.veth_host for s in self.states]


class PynetlinkBulk(Contender):
    """``pynetlink.bulk`` as the ``pynetlink churn`` command runs it
    (``pynetlink.cli.lab.BulkContainers``): ``bulk.setup(containers)`` for all
    of them at once, every result must be ok; ``bulk.teardown(setup)`` (one
    group delete, per-link fallback)."""
    id = "pynetlink-bulk"
    path = "in-place"

    def __init__(self, path: str = "in-place"):
        assert path == "in-place"
        self.wired = None

    @classmethod
    def unavailable(cls):
        return lab_module()[1]

    def prepare(self, ctx):
        self.wired = lab_module()[0].BulkContainers([c.path for c in ctx.containers])
        for entry, c in zip(self.wired.entries, ctx.containers):
            entry.network = _network(c)         # the same one, plus IPv6 under --dual-stack

    def setup(self, ctx):
        self.wired.setup()

    def teardown(self, ctx):
        self.wired.teardown()

    def host_names(self, ctx):
        return [r.state.veth_host for r in self.wired.done.results]

    def group(self, ctx):
        return self.wired.done.group

    def details(self):
        done = self.wired.done if self.wired is not None else None
        return {} if done is None else {"group": done.group}


# -- the list ------------------------------------------------------------------------

# (id, path, factory), in table order
CONTENDERS = [
    ("floor", "in-place", lambda: Floor()),
    ("pynetlink-bulk", "in-place", lambda: PynetlinkBulk()),
    ("pynetlink", "in-place", lambda: PynetlinkStrategies("in-place")),
    ("pynetlink", "move", lambda: PynetlinkStrategies("move")),
    ("pyroute2", "in-place", lambda: Pyroute2("in-place", fork=False)),
    ("pyroute2", "move", lambda: Pyroute2("move", fork=False)),
    ("pyroute2-fork", "in-place", lambda: Pyroute2("in-place", fork=True)),
    ("pyroute2-fork", "move", lambda: Pyroute2("move", fork=True)),
    ("ip-batch", "in-place", lambda: IpBatch("in-place")),
    ("ip-batch", "move", lambda: IpBatch("move")),
    ("ip", "in-place", lambda: IpPerOp("in-place")),
    ("ip", "move", lambda: IpPerOp("move")),
]

UNAVAILABLE_CHECK = {
    "floor": lambda: None,               # decided by compile_floor
    "pynetlink-bulk": PynetlinkBulk.unavailable,
    "pynetlink": PynetlinkBulk.unavailable,
    "pyroute2": Pyroute2.unavailable,
    "pyroute2-fork": Pyroute2.unavailable,
    "ip-batch": IpBatch.unavailable,
    "ip": IpPerOp.unavailable,
}


def versions() -> dict:
    out = {"pyroute2": getattr(pyroute2, "__version__", None) if pyroute2 else None}
    try:
        out["iproute2"] = run(["ip", "-V"], capture=True).stdout.strip()
    except Exception as e:               # noqa: BLE001 - informational only
        out["iproute2"] = f"unknown ({e})"
    return out

