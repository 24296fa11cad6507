"""libcontainer's network strategies: ``Loopback``, ``Veth`` and ``NetNS``.

A strategy sets up one network of a container in two halves, as
libcontainer does: ``create`` runs on the host side (the calling thread's
namespace) once the container process exists, ``initialize`` runs on the
container side.  Beyond libcontainer, ``netns=`` (a path or an open fd)
lets one process do both halves for many containers without entering them.
"""
from __future__ import annotations

import abc
import contextlib
from typing import Iterator, Optional

from . import _validate as v
from . import _names, _veth
from . import netns as _netns
from ._names import DEFAULT_DEVICE
from .handle import Handle, default_handle
from .types import Network, NetworkState

__all__ = ["NetworkStrategy", "Loopback", "Veth", "NetNS", "NotValidStrategyType", "get_strategy"]


class NotValidStrategyType(ValueError):
    """``get_strategy`` was given a type no strategy is registered for."""

    def __init__(self, tpe: object = None):
        super().__init__("not a valid network strategy type")
        self.type = tpe


class NetworkStrategy(abc.ABC):
    """One kind of container network (libcontainer's ``NetworkStrategy``)."""

    @abc.abstractmethod
    def create(self, network: Network, nspid: int, state: NetworkState, *,
               netns: Optional[_netns.Target] = None) -> None:
        """Host side: make what the container's network needs, for the
        container whose process is ``nspid`` (or whose namespace is
        ``netns``), and record it in ``state``."""

    @abc.abstractmethod
    def initialize(self, network: Network, state: NetworkState, *,
                   netns: Optional[_netns.Target] = None) -> None:
        """Container side: configure the network inside the container — in
        the calling thread's namespace, or from outside in ``netns``."""


@contextlib.contextmanager
def _handle_in(netns: Optional[_netns.Target]) -> Iterator[Handle]:
    """The calling thread's default handle, or one bound to ``netns``."""
    if netns is None:
        yield default_handle()
    else:
        with Handle(netns=netns) as handle:
            yield handle


class Loopback(NetworkStrategy):
    """The container's loopback device: brought up by ``initialize``."""

    def create(self, network, nspid, state, *, netns=None) -> None:
        """Nothing to do on the host side."""

    def initialize(self, network, state, *, netns=None) -> None:
        """``ip link set lo up`` inside the container."""
        with _handle_in(netns) as handle:
            handle.interface_up("lo")


class Veth(NetworkStrategy):
    """A veth pair: the host end on ``network.bridge``, the other end
    inside the container as ``eth0`` with the network's addresses.

    ``fast=True`` (the default) creates the container end directly inside
    the container's namespace with its MTU, and the host end on the bridge,
    with its MTU, up, in the same request; ``fast=False`` does what
    libcontainer v1.2.0 did (create, then configure, then move the child),
    which costs an RCU barrier per container under the kernel's RTNL lock.
    The observable result is the same.
    """

    def __init__(self, *, fast: bool = True):
        self.fast = fast

    # -- host side ---------------------------------------------------------------

    def create(self, network: Network, nspid: Optional[int], state: NetworkState, *,
               netns: Optional[_netns.Target] = None) -> None:
        """Make the pair, fill ``state.veth_host`` and ``state.veth_child``.

        Names are ``veth_prefix`` + random characters (fresh ones are tried
        if a name is taken).  If any step fails, everything made is removed
        before the error (with the kernel's errno) is raised.
        """
        plan = _veth.plan(network)
        pid = v.pid(nspid) if netns is None else None
        handle = default_handle()
        with contextlib.ExitStack() as stack:
            target = None if netns is None else stack.enter_context(_netns.netns_fd(netns))
            for attempt in range(_names.NAME_ATTEMPTS):
                host = _names.random_name(network.veth_prefix, plan.suffix_len)
                child = _names.random_name(network.veth_prefix, plan.suffix_len)
                make = self._create_in_place if self.fast else self._create_then_move
                try:
                    make(handle, network, host, child, plan, pid, target)
                except FileExistsError:
                    if attempt == _names.NAME_ATTEMPTS - 1:
                        raise
                    continue
                state.veth_host, state.veth_child = host, child
                return

    def _create_in_place(self, handle: Handle, network: Network, host: str, child: str,
                         plan: _veth.VethPlan, pid, target) -> None:
        handle.create_veth_pair(host, child, mtu=plan.mtu, master=network.bridge, up=True,
                                txqueuelen=plan.txqueuelen, peer_mtu=plan.mtu, peer_pid=pid,
                                peer_netns=target, addr_gen_mode=plan.host_mode)
        if network.hairpin_mode:
            with _removed_on_error(handle, host):
                handle.set_hairpin(host, True)

    def _create_then_move(self, handle: Handle, network: Network, host: str, child: str,
                          plan: _veth.VethPlan, pid, target) -> None:
        mtu, txqueuelen = plan.mtu, plan.txqueuelen
        handle.create_veth_pair(host, child, addr_gen_mode=plan.host_mode)
        with _removed_on_error(handle, host):
            handle.set_interface_master(host, network.bridge)
            if mtu:
                handle.set_mtu(host, mtu)
                handle.set_mtu(child, mtu)
            if txqueuelen:
                handle.set_link(host, txqueuelen=txqueuelen)
            if network.hairpin_mode:
                handle.set_hairpin(host, True)
            handle.interface_up(host)
            if target is None:
                handle.set_interface_in_namespace_pid(child, pid)
            else:
                handle.set_interface_in_namespace_fd(child, target)

    # -- container side ----------------------------------------------------------

    def initialize(self, network: Network, state: NetworkState, *,
                   netns: Optional[_netns.Target] = None) -> None:
        """Rename the child to ``eth0``; set its MAC address, MTU and
        txqueuelen; bring it up; add ``address`` and ``ipv6_address``
        (without DAD: usable at once); add the default routes via
        ``gateway`` and ``ipv6_gateway`` — each when given.  Without
        ``ipv6_address`` (and ``ipv6_link_local``) eth0 comes up with no
        IPv6 link-local address, silent on IPv6.  Everything is validated
        before the first request."""
        if not state.veth_child:
            raise ValueError("state.veth_child is empty: Veth.create makes it")
        child = state.veth_child
        v.ifname(child, "veth_child")
        plan = _veth.plan(network, host_side=False)
        with _handle_in(netns) as handle:
            handle.set_link(child, new_name=DEFAULT_DEVICE, up=True, mac_address=plan.mac,
                            mtu=plan.mtu, txqueuelen=plan.txqueuelen,
                            addr_gen_mode=plan.child_mode)
            for address, iface in plan.addresses:
                handle.set_interface_ip(DEFAULT_DEVICE, address, nodad=iface.version == 6)
            for gateway, _ in plan.gateways:
                handle.set_default_gateway(gateway, DEFAULT_DEVICE)


class NetNS(NetworkStrategy):
    """Join an existing network namespace (``network.ns_path``)."""

    def create(self, network, nspid, state, *, netns=None) -> None:
        """Record ``network.ns_path`` in the state."""
        if not network.ns_path:
            raise ValueError("NetNS network needs an ns_path")
        v.path(network.ns_path, "ns_path")
        state.ns_path = network.ns_path

    def initialize(self, network, state, *, netns=None) -> None:
        """Move the calling thread into ``state.ns_path`` (``setns``), closing
        the fd it opened (libcontainer leaked it).  Joining is something the
        container's own thread does: ``netns=`` is refused."""
        if netns is not None:
            raise ValueError("NetNS.initialize joins a namespace with the calling thread; "
                             "it cannot be done from outside (netns=)")
        if not state.ns_path:
            raise ValueError("state.ns_path is empty: NetNS.create fills it")
        _netns.enter(state.ns_path)


_STRATEGIES = {"veth": Veth, "loopback": Loopback, "netns": NetNS}


def get_strategy(tpe: str) -> NetworkStrategy:
    """A new strategy for ``tpe`` ("veth", "loopback" or "netns");
    anything else raises NotValidStrategyType."""
    factory = _STRATEGIES.get(tpe) if isinstance(tpe, str) else None
    if factory is None:
        raise NotValidStrategyType(tpe)
    return factory()


@contextlib.contextmanager
def _removed_on_error(handle: Handle, name: str) -> Iterator[None]:
    """Delete link ``name`` (and so its veth peer) if the block fails."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            handle.delete_link(name)
        raise
