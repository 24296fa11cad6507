"""What a veth network asks for: its ``Network`` validated once, for
``Veth`` and ``bulk``."""
from __future__ import annotations

import functools
import os
from typing import List, NamedTuple, Optional, Tuple

from . import _validate as v
from ._names import suffix_len
from .types import Network


class VethPlan(NamedTuple):
    """A veth ``Network``, validated: the raw values as given, and each
    address and gateway with its parsed form."""
    network: Network
    suffix_len: int                 # 0 when the host side was not asked for
    mtu: Optional[int]
    txqueuelen: Optional[int]
    mac: Optional[str]
    addresses: List[Tuple[str, v.IPInterface]]      # address, ipv6_address
    gateways: List[Tuple[str, v.IPAddress]]         # gateway, ipv6_gateway
    host_mode: Optional[str]        # the host end's addr_gen_mode ("none": quiet), None: as is
    child_mode: Optional[str]       # the container end's, likewise


@functools.lru_cache(maxsize=None)
def kernel_has_ipv6() -> bool:
    """Whether the kernel runs IPv6 at all (not booted with ipv6.disable=1):
    without it there is nothing to quieten, and the kernel refuses IPv6
    link attributes (EAFNOSUPPORT)."""
    return os.path.isdir("/proc/sys/net/ipv6")


def quiet_modes(network: Network) -> Tuple[Optional[str], Optional[str]]:
    """The addr_gen_mode of the host end and of the container end: "none"
    (no IPv6 link-local address, so no DAD, router solicitation or MLD
    report) for a bridge port unless ``host_ipv6_link_local``, and for a
    container end without an ``ipv6_address`` unless ``ipv6_link_local``,
    as Docker does; None leaves the kernel's default."""
    if not kernel_has_ipv6():
        return None, None
    host = None if network.host_ipv6_link_local else "none"
    child = None if network.ipv6_address or network.ipv6_link_local else "none"
    return host, child


def plan(network: Network, *, host_side: bool = True) -> VethPlan:
    """Validate everything ``network`` asks of a veth: with ``host_side``,
    a bridge and a veth_prefix with room for a random suffix."""
    if not isinstance(network, Network):
        raise TypeError(f"network must be a pynetlink.Network, not {type(network).__name__}")
    length = 0
    if host_side:
        if not network.bridge:
            raise ValueError("a veth network needs a bridge")
        if not network.veth_prefix:
            raise ValueError("a veth network needs a veth_prefix")
        v.ifname(network.bridge, "bridge")
        length = suffix_len(network.veth_prefix)
    if network.mac_address:
        v.mac(network.mac_address)
    for flag in ("ipv6_link_local", "host_ipv6_link_local"):
        if not isinstance(getattr(network, flag), bool):
            raise TypeError(f"network.{flag} must be a bool, not {type(getattr(network, flag)).__name__}")
    return VethPlan(network, length,
                    v.mtu(network.mtu) if network.mtu else None,
                    v.txqueuelen(network.txqueuelen) if network.txqueuelen else None,
                    network.mac_address or None,
                    [(a, v.cidr(a)) for a in (network.address, network.ipv6_address) if a],
                    [(g, v.ip(g, "gateway")) for g in (network.gateway, network.ipv6_gateway) if g],
                    *quiet_modes(network))
