"""What a veth network asks for, in one place: its ``Network`` validated
once, and the rules for random host-end names, link groups and retries
that ``Veth``, ``bulk`` and the CNI plugin share."""
from __future__ import annotations

import os
from typing import List, NamedTuple, Optional, Tuple

from . import _validate as v
from .types import Network

DEFAULT_DEVICE = "eth0"     # the container end's final name
SUFFIX_LEN = 7              # random characters after veth_prefix (fewer if the prefix is long)
MIN_SUFFIX_LEN = 4
NAME_ATTEMPTS = 10          # fresh names tried when a name is taken (EEXIST), as the CNI plugins do
GROUP_FLOOR = 2**16         # random link groups start here, clear of hand-picked small ones
GROUP_CEILING = 2**31       # and stay below: iproute2 prints groups as signed numbers


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


def suffix_len(prefix: str) -> int:
    """How many random characters fit after ``prefix`` (at least four)."""
    room = v.IFNAMSIZ - 1 - len(v.ifname(prefix, "veth_prefix"))
    if room < MIN_SUFFIX_LEN:
        raise ValueError(f"veth_prefix {prefix!r} is too long: names are at most "
                         f"{v.IFNAMSIZ - 1} bytes and need {MIN_SUFFIX_LEN} random characters")
    return min(SUFFIX_LEN, room)


def random_name(prefix: str, length: int) -> str:
    """``prefix`` and ``length`` random hex digits (from the kernel's CSPRNG)."""
    return prefix + os.urandom((length + 1) // 2).hex()[:length]


def random_below(n: int) -> int:
    """A uniformly random int in [0, n), n < 2**32, from the kernel's CSPRNG
    (``secrets`` would cost a short-lived process milliseconds of imports)."""
    limit = (1 << 32) - (1 << 32) % n           # reject the biased tail
    while True:
        value = int.from_bytes(os.urandom(4), "little")
        if value < limit:
            return value % n


def random_group() -> int:
    """A fresh link group for the host ends of one setup."""
    return GROUP_FLOOR + random_below(GROUP_CEILING - GROUP_FLOOR)
