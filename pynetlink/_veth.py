"""What a veth network asks for: its ``Network`` validated once, for
``Veth`` and ``bulk``."""
from __future__ import annotations

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
    return VethPlan(network, length,
                    v.mtu(network.mtu) if network.mtu else None,
                    v.txqueuelen(network.txqueuelen) if network.txqueuelen else None,
                    network.mac_address or None,
                    [(a, v.cidr(a)) for a in (network.address, network.ipv6_address) if a],
                    [(g, v.ip(g, "gateway")) for g in (network.gateway, network.ipv6_gateway) if g])
