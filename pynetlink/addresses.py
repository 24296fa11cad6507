"""Addresses: the ``Address`` record, and the messages of RTM_NEWADDR /
RTM_DELADDR / RTM_GETADDR.  Builders take validated values."""
from __future__ import annotations

import ipaddress
from collections import namedtuple
from typing import Optional

from . import _validate as v
from ._core import (AF_INET, AF_INET6, AF_UNSPEC, Encoder, IFA_F_DADFAILED, IFA_F_NODAD,
                    IFA_F_PERMANENT,
                    IFA_F_TENTATIVE, NLM_F_CREATE, NLM_F_EXCL, RTM_DELADDR, RTM_NEWADDR,
                    RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_SITE,
                    RT_SCOPE_UNIVERSE, addr_dump_encoder, addr_encoder)

CREATE = NLM_F_CREATE | NLM_F_EXCL

# ip's names of scopes and families (``ip -j`` prints these)
SCOPES = {RT_SCOPE_UNIVERSE: "global", RT_SCOPE_SITE: "site", RT_SCOPE_LINK: "link",
          RT_SCOPE_HOST: "host", RT_SCOPE_NOWHERE: "nowhere"}
FAMILIES = {AF_INET: "inet", AF_INET6: "inet6"}
INFINITY = 0xFFFFFFFF           # a lifetime that never ends ("forever")


class Address(namedtuple("Address", "ifindex ifname family local prefixlen address broadcast "
                                    "scope label flags valid_life_time preferred_life_time")):
    """An interface address as the kernel reported it, its fields named as
    ``ip -j addr show`` names them: ``ifindex``, ``ifname``, ``family``
    ("inet"/"inet6"), ``local`` (the address itself), ``prefixlen``,
    ``address`` (the peer of a point-to-point address, else None),
    ``broadcast`` (IPv4, or None), ``scope`` ("global", "link", "host"...),
    ``label`` (IPv4 label or None), ``flags`` (IFA_F_* bits: see
    ``tentative``, ``dadfailed``, ``permanent``), and the lifetimes in
    seconds (``INFINITY``: forever)."""
    __slots__ = ()

    @property
    def interface(self) -> v.IPInterface:
        """``local/prefixlen`` as an ipaddress interface."""
        return ipaddress.ip_interface(f"{self.local}/{self.prefixlen}")

    @property
    def tentative(self) -> bool:
        """Duplicate address detection still running (IPv6): not yet usable."""
        return bool(self.flags & IFA_F_TENTATIVE)

    @property
    def dadfailed(self) -> bool:
        return bool(self.flags & IFA_F_DADFAILED)

    @property
    def permanent(self) -> bool:
        """Configured, not learnt (``ip`` omits "dynamic" for these)."""
        return bool(self.flags & IFA_F_PERMANENT)

    @classmethod
    def from_raw(cls, raw: dict, ifname: str) -> "Address":
        local = raw["local"] if raw["local"] is not None else raw["address"]
        peer = raw["address"] if raw["address"] not in (None, local) else None
        return cls(raw["index"], ifname, FAMILIES.get(raw["family"], str(raw["family"])), local,
                   raw["prefixlen"], peer, raw["broadcast"],
                   SCOPES.get(raw["scope"], str(raw["scope"])), raw["label"], raw["flags"],
                   raw["valid_lft"], raw["preferred_lft"])


def family_number(family: Optional[int]) -> int:
    """AF_* for a family given as None (both), 4 or 6."""
    if family is None:
        return AF_UNSPEC
    if isinstance(family, bool) or family not in (4, 6):
        raise ValueError(f"family must be 4, 6 or None, not {family!r}")
    return AF_INET if family == 4 else AF_INET6


def _encoder(msg_type: int, nlflags: int, iface: v.IPInterface, index: int,
             flags: int = 0) -> Encoder:
    """IPv4 gets the subnet's broadcast address (none for /31 and /32) and
    host scope inside 127.0.0.0/8, as ``ip`` does; IPv6 lets the kernel
    choose, and takes ``flags`` (IFA_F_NODAD)."""
    prefixlen = iface.network.prefixlen
    local = iface.packed
    if isinstance(iface, ipaddress.IPv4Interface):
        host_bits = (1 << (32 - prefixlen)) - 1
        broadcast = (int(iface) | host_bits).to_bytes(4, "big") if prefixlen < 31 else None
        return addr_encoder(msg_type, nlflags, index=index, family=AF_INET, prefixlen=prefixlen,
                            local=local, broadcast=broadcast,
                            scope=RT_SCOPE_HOST if local[0] == 127 else RT_SCOPE_UNIVERSE)
    return addr_encoder(msg_type, nlflags, index=index, family=AF_INET6, prefixlen=prefixlen,
                        local=local, scope=RT_SCOPE_UNIVERSE, flags=flags)


def check_nodad(iface: v.IPInterface, nodad: object) -> bool:
    """``nodad`` is a bool, and only asked of an IPv6 address."""
    if not isinstance(nodad, bool):
        raise TypeError(f"nodad must be a bool, not {type(nodad).__name__}")
    if nodad and iface.version != 6:
        raise ValueError(f"nodad is for IPv6 addresses (IPv4 has no duplicate address "
                         f"detection): {iface}")
    return nodad


def add(iface: v.IPInterface, index: int, nodad: bool = False) -> Encoder:
    """``ip addr add ADDR/PREFIX [broadcast BRD] dev INDEX [nodad]``;
    ``nodad``: an IPv6 address usable at once, without duplicate address
    detection (no neighbour solicitation sent, never ``tentative``)."""
    return _encoder(RTM_NEWADDR, CREATE, iface, index, IFA_F_NODAD if nodad else 0)


def delete(iface: v.IPInterface, index: int) -> Encoder:
    """``ip addr del ADDR/PREFIX dev INDEX``."""
    return _encoder(RTM_DELADDR, 0, iface, index)


def dump(family: int) -> Encoder:
    """``ip addr show``: RTM_GETADDR with NLM_F_DUMP, every address of
    ``family`` (AF_UNSPEC: both) in the namespace."""
    return addr_dump_encoder(family)
