"""``Handle``: one rtnetlink socket bound to one network namespace, with one
method per operation.  The module-level functions of ``pynetlink`` use a
per-thread default handle (see ``default_handle``)."""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Optional, Sequence

from . import links, netns, ops
from . import _validate as v
from ._core import RCVBUF, Reply, Request, Socket
from .errors import error_for
from .links import Link

if TYPE_CHECKING:
    from .batch import Batch


class Handle:
    """An rtnetlink socket in one network namespace.

    ``netns`` is None (the calling thread's current namespace), a path
    (``/run/netns/NAME``, ``/proc/PID/ns/net``) or an open fd (kept open by
    the caller).  The socket for another namespace is made without fork and
    without moving the process: the calling thread enters the namespace for
    the ``socket()`` call only.  ``timeout`` (seconds) bounds every wait for
    the kernel.  ``rcvbuf``: the socket's receive buffer in bytes (default
    1 MiB, room for a window of replies; if the kernel ever overflows it,
    the operations whose answers it dropped are reported, never guessed).
    A Handle is a context manager and may be shared by threads.
    """

    def __init__(self, netns: Optional[netns.Target] = None, *, timeout: float = 5.0,
                 rcvbuf: int = RCVBUF):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError("timeout must be a number of seconds")
        if not 0.001 <= timeout <= 3600:
            raise ValueError(f"timeout {timeout} is out of range [0.001, 3600] seconds")
        v.integer(rcvbuf, "rcvbuf", 1024, 1 << 30)
        self._sock: Optional[Socket] = None
        if netns is None:
            self._sock = Socket(-1, timeout, rcvbuf=rcvbuf)
        else:
            with _netns_fd(netns) as fd:
                self._sock = Socket(fd, timeout, rcvbuf=rcvbuf)

    # -- life cycle ----------------------------------------------------------

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()

    @property
    def timeout(self) -> float:
        """Seconds each wait for the kernel may last."""
        return self._sock.timeout_ms / 1000 if self._sock else 0.0

    @property
    def closed(self) -> bool:
        return self._sock is None or self._sock.fd < 0

    def fileno(self) -> int:
        return self._sock.fd if self._sock else -1

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            sock.close()

    def __repr__(self) -> str:
        return f"<pynetlink.Handle fd={self.fileno()}{' closed' if self.closed else ''}>"

    # -- running requests ------------------------------------------------------

    def _run(self, requests: Sequence[Request]) -> list[Reply]:
        return self._sock.exchange(requests)

    def _do(self, request: Request) -> Reply:
        reply = self._sock.exchange((request,))[0]
        if reply.errno:
            raise request.error(reply.errno, reply.ext_ack)
        return reply

    def _indexes(self, names: Sequence[str], operation: str, arguments: tuple) -> dict:
        """The ifindex of each name: one pipelined RTM_GETLINK per name, in
        one exchange.  A missing name raises (ENODEV) as ``operation``."""
        replies = self._run([links.index_of(n, operation, arguments) for n in names])
        for name, reply in zip(names, replies):
            if reply.errno:
                raise error_for(reply.errno, operation, arguments, name, reply.ext_ack)
        return {name: reply.link["index"] for name, reply in zip(names, replies)}

    def _index(self, name: str, operation: str, arguments: tuple) -> int:
        return self._indexes((name,), operation, arguments)[name]

    def _run_op(self, op: ops.Op) -> None:
        try:
            indexes = self._indexes(op.needs, op.operation, op.arguments) if op.needs else {}
            self._do(op.build(indexes))
        finally:
            op.close()

    def batch(self, on_error: str = "continue") -> "Batch":
        """Queue operations and run them pipelined: as few sends as possible,
        one result each.  ``on_error`` is "continue" (every operation is
        tried), "stop" (nothing after the first failure is applied) or
        "rollback" (a transaction: if any fails, what was applied is undone
        in reverse order).  See ``pynetlink.batch``."""
        from .batch import Batch
        return Batch(self, on_error)

    # -- the seed's operations ---------------------------------------------------

    def create_bridge(self, name: str, *, mtu: Optional[int] = None, up: bool = False) -> None:
        """Create a bridge NAME (down unless ``up``), with ``mtu`` if given;
        EEXIST if the name is taken.
        Equivalent to: ``ip link add NAME [mtu M] [up] type bridge``."""
        self._run_op(ops.create_bridge(name, mtu=mtu, up=up))

    def create_veth_pair(self, name1: str, name2: str, *, mtu: Optional[int] = None,
                         master: Optional[str] = None, up: bool = False,
                         txqueuelen: Optional[int] = None, group: Optional[int] = None,
                         peer_mtu: Optional[int] = None,
                         peer_netns: Optional[netns.Target] = None,
                         peer_pid: Optional[int] = None) -> None:
        """Create a veth pair NAME1 <-> NAME2, both down unless ``up``.

        The keyword options make the whole host end in the same message:
        ``mtu``, ``master`` (a bridge), ``up``, ``txqueuelen`` and ``group``
        apply to NAME1; ``peer_mtu`` and ``peer_netns`` (a path or fd) or
        ``peer_pid`` to NAME2, which is then born inside that namespace —
        no move, no RCU barrier, and nothing left behind if any of it fails.
        Equivalent to: ``ip link add NAME1 [mtu M] [master B] [up] type veth
        peer name NAME2 [mtu M] [netns NS]``."""
        self._run_op(ops.create_veth_pair(
            name1, name2, mtu=mtu, master=master, up=up, txqueuelen=txqueuelen, group=group,
            peer_mtu=peer_mtu, peer_netns=peer_netns, peer_pid=peer_pid))

    def interface_up(self, name: str) -> None:
        """Set IFF_UP only. Equivalent to: ``ip link set NAME up``."""
        self._run_op(ops.set_flags("interface_up", name, True))

    def interface_down(self, name: str) -> None:
        """Clear IFF_UP only. Equivalent to: ``ip link set NAME down``."""
        self._run_op(ops.set_flags("interface_down", name, False))

    def set_mtu(self, name: str, mtu: int) -> None:
        """Set the MTU; admin state and flags untouched.
        Equivalent to: ``ip link set NAME mtu MTU``."""
        self._run_op(ops.set_mtu(name, mtu))

    def set_interface_master(self, name: str, master: str) -> None:
        """Enslave NAME to MASTER (e.g. a bridge) over netlink.
        Equivalent to: ``ip link set NAME master MASTER``."""
        self._run_op(ops.set_interface_master(name, master))

    def change_interface_name(self, old: str, new: str) -> None:
        """Rename a link. Equivalent to: ``ip link set OLD name NEW``."""
        self._run_op(ops.change_interface_name(old, new))

    def set_interface_in_namespace_pid(self, name: str, pid: int) -> None:
        """Move a link into the network namespace of process PID.
        Equivalent to: ``ip link set NAME netns PID``."""
        self._run_op(ops.set_interface_in_namespace_pid(name, pid))

    def set_interface_in_namespace_fd(self, name: str, fd: int) -> None:
        """Move a link into the network namespace open at FD.
        Equivalent to: ``ip link set NAME netns /proc/self/fd/FD``."""
        self._run_op(ops.set_interface_in_namespace_fd(name, fd))

    def set_interface_ip(self, name: str, raw_ip) -> None:
        """Add an address from a CIDR (str or ipaddress interface), IPv4 or IPv6.
        Equivalent to: ``ip addr add RAW_IP dev NAME`` (with ``brd +`` for IPv4)."""
        self._run_op(ops.set_interface_ip(name, raw_ip))

    def set_default_gateway(self, ip, iface_name: str) -> None:
        """Add the default route via IP out of IFACE_NAME (IPv4 or IPv6).
        Equivalent to: ``ip route add default via IP dev IFACE_NAME``."""
        self._run_op(ops.set_default_gateway(ip, iface_name))

    # -- beyond the seed ---------------------------------------------------------

    def add_route(self, dst, iface_name: str, gateway=None) -> None:
        """Add a route to DST (a network, IPv4 or IPv6) out of IFACE_NAME,
        through GATEWAY if given (scope global), else on-link (scope link);
        main table, proto boot.
        Equivalent to: ``ip route add DST [via GATEWAY] dev IFACE_NAME``."""
        self._run_op(ops.add_route(dst, iface_name, gateway))

    def delete_link(self, name: str) -> None:
        """Delete a link (a veth takes its peer along).
        Equivalent to: ``ip link del NAME``."""
        self._run_op(ops.delete_link(name))

    def set_link(self, name: str, *, new_name: Optional[str] = None,
                 mac_address: Optional[str] = None, mtu: Optional[int] = None,
                 txqueuelen: Optional[int] = None, up: Optional[bool] = None,
                 promisc: Optional[bool] = None, master: Optional[str] = None) -> None:
        """Change several attributes of a link in one request; only those
        given change (``up=None`` leaves the admin state alone, and
        ``promisc=None`` promiscuous mode).  The kernel applies the MAC
        address, MTU and name before the flags.
        Equivalent to: ``ip link set NAME [name NEW] [address MAC] [mtu M]
        [txqueuelen N] [master M] [promisc on|off] [up|down]``."""
        self._run_op(ops.set_link(name, new_name=new_name, mac_address=mac_address, mtu=mtu,
                                  txqueuelen=txqueuelen, up=up, promisc=promisc, master=master))

    def set_hairpin(self, name: str, on: bool = True) -> None:
        """Let a bridge port send frames back out where they came in
        (hairpin mode; libcontainer's ``hairpin_mode``).
        Equivalent to: ``ip link set NAME type bridge_slave hairpin on``."""
        self._run_op(ops.set_hairpin(name, on))

    def delete_group(self, group: int) -> None:
        """Delete every link of link group GROUP with one request: one RCU
        grace period for all of them, not one each.  A veth takes its peer
        along.  Equivalent to: ``ip link delete group GROUP``."""
        self._do(links.delete_group(group))

    def list_links(self) -> list[Link]:
        """Every link of the namespace, with its counters, in one dump.
        Equivalent to: ``ip -s link show``."""
        return [Link.from_raw(raw) for raw in self._sock.dump_links(links.dump())]

    def link_index(self, name: str) -> int:
        """The ifindex of NAME: one RTM_GETLINK for that name, never a dump.
        Equivalent to: ``ip -j link show NAME | jq .[0].ifindex``."""
        return self._index(name, "link_index", (name,))

    def get_link(self, name: str) -> Link:
        """What the kernel says of NAME: index, flags, MTU, master, group,
        txqlen, link-layer address, hairpin and counters.
        Equivalent to: ``ip -d -s link show NAME``."""
        return Link.from_raw(self._do(links.get(name)).link)


def _netns_fd(target):
    if target is not None and not isinstance(target, (str, int, bytes)) and not hasattr(target, "__fspath__"):
        raise TypeError(f"netns must be None, a path or an fd, not {type(target).__name__}")
    return netns.netns_fd(target)


_local = threading.local()


def default_handle() -> Handle:
    """The calling thread's handle for its current network namespace.

    Made on first use; made again when the thread has since moved to another
    namespace (e.g. by ``netns.enter``) or the process has forked, so the
    module-level functions always act where the calling thread is, as the
    seed's did.
    """
    key = (netns.current_id(), os.getpid())
    handle = getattr(_local, "handle", None)
    if handle is None or _local.key != key or handle.closed:
        if handle is not None:
            handle.close()
        handle = _local.handle = Handle()
        _local.key = key
    return handle
