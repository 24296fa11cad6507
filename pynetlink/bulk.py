"""Set up and tear down the networks of many containers at once.

``setup(containers)`` gives each container — its network namespace (a
path, an fd, or a pid) and a ``Network`` — what ``Loopback`` + ``Veth``
would: a veth whose host end is on ``network.bridge`` (MTU, txqueuelen,
hairpin, up) and whose other end is ``eth0`` inside the container (MTU,
MAC, txqueuelen, up, ``address``/``ipv6_address``, default routes), and
``lo`` up.  It takes the kernel's fastest path: every container end is
born inside its namespace already named ``eth0`` (no move, no rename), the
host side goes out as pipelined batches from one socket, each container
gets one socket (made without fork, closed when done), and every host end
is tagged with one link group, so ``teardown`` removes them all with a
single RTM_DELLINK — one RCU grace period for the lot, not one each.

A container that fails is reported with its error and leaves nothing
behind; the others are set up.  Bad input (any container's) raises
``ValueError``/``TypeError`` before anything is sent.
"""
from __future__ import annotations

import contextlib
import errno as _errno
import secrets
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Union

from . import _validate as v
from . import netns as _netns
from .batch import FAILED
from .handle import Handle, default_handle
from .strategies import DEFAULT_DEVICE, NAME_ATTEMPTS, _random_name, _suffix_len
from .types import Network, NetworkState

__all__ = ["Container", "ContainerResult", "Setup", "setup", "teardown", "remove"]


@dataclass
class Container:
    """One container to set up: its namespace as ``netns`` (a path or an
    open fd) or as ``pid`` (its process), and its veth ``network``."""
    network: Network
    netns: Optional[_netns.Target] = None
    pid: Optional[int] = None


@dataclass
class ContainerResult:
    container: Container
    state: Optional[NetworkState] = None    # veth_host, veth_child ("eth0"), ns_path
    error: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Setup:
    """What ``setup`` did: one result per container, in order, and the link
    group that tags every host end it made."""
    group: int
    results: List[ContainerResult]

    @property
    def states(self) -> List[NetworkState]:
        return [r.state for r in self.results if r.ok]


@dataclass
class _Plan:
    container: Container
    network: Network
    suffix_len: int
    mtu: Optional[int]
    txqueuelen: Optional[int]
    fd: int = -1
    host: str = ""
    error: Optional[BaseException] = None


def _plan(i: int, c: Container) -> _Plan:
    """Validate container i completely, before anything is sent."""
    if not isinstance(c, Container):
        raise TypeError(f"container {i}: expected pynetlink.bulk.Container, not {type(c).__name__}")
    n = c.network
    try:
        if not isinstance(n, Network):
            raise TypeError(f"network must be a pynetlink.Network, not {type(n).__name__}")
        if (c.netns is None) == (c.pid is None):
            raise ValueError("give the container's namespace as netns= or as pid=, exactly one")
        if c.pid is not None:
            v.pid(c.pid)
        elif isinstance(c.netns, int) and not isinstance(c.netns, bool):
            v.fd(c.netns)
        else:
            v.path(c.netns)
        if not n.bridge or not n.veth_prefix:
            raise ValueError("a veth network needs a bridge and a veth_prefix")
        v.ifname(n.bridge, "bridge")
        for address in (n.address, n.ipv6_address):
            if address:
                v.cidr(address)
        for gateway in (n.gateway, n.ipv6_gateway):
            if gateway:
                v.ip(gateway)
        if n.mac_address:
            v.mac(n.mac_address)
        return _Plan(c, n, _suffix_len(n.veth_prefix), v.mtu(n.mtu) if n.mtu else None,
                     v.txqueuelen(n.txqueuelen) if n.txqueuelen else None)
    except (ValueError, TypeError) as e:
        raise type(e)(f"container {i}: {e}") from None


def setup(containers: Iterable[Container], *, group: Optional[int] = None,
          handle: Optional[Handle] = None) -> Setup:
    """Set up every container's network; see the module documentation.

    The host side acts in the calling thread's namespace (or ``handle``'s).
    ``group`` tags the host ends (default: a fresh random group); pass the
    returned ``Setup`` to ``teardown``.
    """
    plans = [_plan(i, c) for i, c in enumerate(containers)]
    # below 2**31: iproute2 prints groups as signed numbers
    group = v.group(group) if group is not None else secrets.randbelow(2**31 - 2**16) + 2**16
    if group == 0:
        raise ValueError("group 0 is every link's default group")
    host = handle or default_handle()
    with contextlib.ExitStack() as stack:
        for p in plans:
            _open_namespace(p, stack)
        _create_host_side(host, [p for p in plans if not p.error], group)
        for p in plans:
            if not p.error:
                _configure_container(p)
        failed = [p for p in plans if p.error and p.host]
        if failed:
            _delete(host, [p.host for p in failed])
    return Setup(group, [ContainerResult(p.container, None if p.error else NetworkState(
        veth_host=p.host, veth_child=DEFAULT_DEVICE,
        ns_path=p.container.netns if isinstance(p.container.netns, str) else ""), p.error)
        for p in plans])


def _open_namespace(p: _Plan, stack: contextlib.ExitStack) -> None:
    c = p.container
    try:
        if c.pid is not None:
            p.fd = stack.enter_context(_netns.netns_fd(f"/proc/{c.pid}/ns/net"))
        else:
            p.fd = stack.enter_context(_netns.netns_fd(c.netns))
    except OSError as e:
        p.error = e


def _create_host_side(host: Handle, plans: Sequence[_Plan], group: int) -> None:
    """One pipelined batch per attempt: each pair made in one request, the
    peer born as eth0 inside its container; fresh host names on EEXIST."""
    todo = list(plans)
    for attempt in range(NAME_ATTEMPTS):
        if not todo:
            break
        batch = host.batch("continue")
        for p in todo:
            p.host = _random_name(p.network.veth_prefix, p.suffix_len)
            batch.create_veth_pair(p.host, DEFAULT_DEVICE, mtu=p.mtu, master=p.network.bridge,
                                   up=True, txqueuelen=p.txqueuelen, group=group,
                                   peer_mtu=p.mtu, peer_netns=p.fd)
        retry = []
        for p, r in zip(todo, batch.run()):
            if r.ok:
                continue
            if r.errno == _errno.EEXIST and attempt < NAME_ATTEMPTS - 1 and _host_name_taken(host, p.host):
                retry.append(p)
            else:
                p.error, p.host = r.exception(), ""
        todo = retry
    hairpins = [p for p in plans if not p.error and p.network.hairpin_mode]
    if hairpins:
        batch = host.batch("continue")
        for p in hairpins:
            batch.set_hairpin(p.host, True)
        for p, r in zip(hairpins, batch.run()):
            if not r.ok:
                p.error = r.exception()


def _host_name_taken(host: Handle, name: str) -> bool:
    """Was EEXIST about the host end's name (worth a fresh name) rather
    than about eth0 inside the container (which no retry can fix)?"""
    try:
        host.link_index(name)
        return True
    except OSError:
        return False


def _configure_container(p: _Plan) -> None:
    """The container side in one socket: two pipelined exchanges (lo and
    eth0 by name; then, with eth0's index, addresses and routes)."""
    n = p.network
    try:
        with Handle(netns=p.fd) as h:
            batch = h.batch("continue")
            batch.interface_up("lo")
            batch.set_link(DEFAULT_DEVICE, up=True, mac_address=n.mac_address or None,
                           txqueuelen=p.txqueuelen)
            for address in (n.address, n.ipv6_address):
                if address:
                    batch.set_interface_ip(DEFAULT_DEVICE, address)
            for gateway in (n.gateway, n.ipv6_gateway):
                if gateway:
                    batch.set_default_gateway(gateway, DEFAULT_DEVICE)
            failure = next((r for r in batch.run() if r.status == FAILED), None)
            if failure is not None:
                p.error = failure.exception()
    except OSError as e:
        p.error = e


def _delete(host: Handle, names: Sequence[str]) -> List[Optional[OSError]]:
    """Delete links by name, pipelined; an already-gone link is not an error."""
    batch = host.batch("continue")
    for name in names:
        batch.delete_link(name)
    return [None if r.ok or r.errno == _errno.ENODEV else r.exception() for r in batch.run()]


def teardown(setup_done: Union[Setup, int], *, handle: Optional[Handle] = None) -> None:
    """Remove every host end ``setup`` made (their peers go with them) with
    one group delete; idempotent.  If the kernel refuses group deletion, the
    host ends are deleted one by one (pipelined) instead.  Given only a
    group number, deletes every link of that group.
    Equivalent to: ``ip link delete group GROUP``."""
    group = setup_done.group if isinstance(setup_done, Setup) else setup_done
    host = handle or default_handle()
    try:
        host.delete_group(group)
    except OSError as e:
        if e.errno == _errno.ENODEV:                # nothing (left) in the group
            return
        if not isinstance(setup_done, Setup) or e.errno not in (_errno.EOPNOTSUPP, _errno.EINVAL):
            raise
        errors = [err for err in remove(setup_done.states, handle=host) if err]
        if errors:
            raise errors[0]


def remove(states: Iterable[NetworkState], *, handle: Optional[Handle] = None) -> List[Optional[OSError]]:
    """Delete the host end of each state (pipelined, one request each);
    one entry per state: None, or the error.  A host end already gone is
    not an error."""
    states = list(states)
    named = [s for s in states if s.veth_host]
    errors = dict(zip(map(id, named), _delete(handle or default_handle(), [s.veth_host for s in named])))
    return [errors.get(id(s)) for s in states]
