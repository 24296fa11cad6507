"""Routes: the ``Route`` record, and the messages of RTM_NEWROUTE /
RTM_DELROUTE / RTM_GETROUTE.  Builders take validated values."""
from __future__ import annotations

import ipaddress
from collections import namedtuple
from typing import Optional, Union

from . import _validate as v
from ._core import (AF_INET, AF_INET6, IP6_RT_PRIO_USER, Encoder, NLM_F_CREATE, NLM_F_EXCL,
                    NLM_F_REPLACE, RTM_DELROUTE, RTM_F_CLONED, RTM_NEWROUTE, RTN_ANYCAST, RTN_BLACKHOLE,
                    RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_PROHIBIT, RTN_THROW, RTN_UNICAST,
                    RTN_UNREACHABLE, RTN_UNSPEC, RTPROT_BOOT, RTPROT_DHCP, RTPROT_KERNEL,
                    RTPROT_RA, RTPROT_REDIRECT, RTPROT_STATIC, RTPROT_UNSPEC, RT_SCOPE_LINK,
                    RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE, RT_TABLE_DEFAULT, RT_TABLE_LOCAL,
                    RT_TABLE_MAIN, route_dump_encoder, route_encoder)
from .addresses import FAMILIES, SCOPES

CREATE = NLM_F_CREATE | NLM_F_EXCL
REPLACE = NLM_F_CREATE | NLM_F_REPLACE
CLONED = RTM_F_CLONED         # rtm_flags of a cached route, not one of the table

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

# ip's names (iproute2's rt_protos, rt_tables and route types), as ``ip -j`` prints them
PROTOCOLS = {RTPROT_UNSPEC: "unspec", RTPROT_REDIRECT: "redirect", RTPROT_KERNEL: "kernel",
             RTPROT_BOOT: "boot", RTPROT_STATIC: "static", RTPROT_RA: "ra",
             RTPROT_DHCP: "dhcp"}
TABLES = {"main": RT_TABLE_MAIN, "local": RT_TABLE_LOCAL, "default": RT_TABLE_DEFAULT}
TYPES = {RTN_UNICAST: "unicast", RTN_LOCAL: "local", RTN_BROADCAST: "broadcast",
         RTN_ANYCAST: "anycast", RTN_MULTICAST: "multicast", RTN_BLACKHOLE: "blackhole",
         RTN_UNREACHABLE: "unreachable", RTN_PROHIBIT: "prohibit", RTN_THROW: "throw"}


class Route(namedtuple("Route", "family dst gateway dev oif prefsrc metric table protocol "
                                "scope type flags")):
    """A route as the kernel reported it, its fields named as ``ip -j route
    show`` names them: ``family`` ("inet"/"inet6"), ``dst`` ("default", an
    address for a host route, else "NET/PREFIX" — as ``ip`` prints it),
    ``gateway`` (or None), ``dev`` (the output link's name, or None) and
    ``oif`` (its index, 0: none), ``prefsrc`` (or None), ``metric`` (or
    None), ``table`` (a number: 254 is main), ``protocol``, ``scope`` and
    ``type`` (ip's names, e.g. "boot", "link", "unicast") and ``flags``
    (rtm_flags).  ``network`` gives ``dst`` as an ipaddress network."""
    __slots__ = ()

    @property
    def network(self) -> IPNetwork:
        if self.dst == "default":
            return ipaddress.ip_network("0.0.0.0/0" if self.family == "inet" else "::/0")
        return ipaddress.ip_network(self.dst)

    @classmethod
    def from_raw(cls, raw: dict, dev: Optional[str]) -> "Route":
        full = 32 if raw["family"] == AF_INET else 128
        if not raw["dst_len"]:
            dst = "default"
        elif raw["dst_len"] == full:
            dst = raw["dst"]
        else:
            dst = f"{raw['dst']}/{raw['dst_len']}"
        return cls(FAMILIES.get(raw["family"], str(raw["family"])), dst, raw["gateway"], dev,
                   raw["oif"], raw["prefsrc"], raw["priority"], raw["table"],
                   PROTOCOLS.get(raw["protocol"], str(raw["protocol"])),
                   SCOPES.get(raw["scope"], str(raw["scope"])),
                   TYPES.get(raw["type"], str(raw["type"])), raw["flags"])


# -- validation ------------------------------------------------------------------

def parse_gateway(ip: object) -> v.IPAddress:
    return v.ip(ip, "gateway")


def parse_destination(dst: object, gateway: Optional[v.IPAddress] = None) -> IPNetwork:
    """A route's destination: 'NET/PREFIX' (no host bits, as the kernel
    demands), an ipaddress network, or "default" (as ``Route.dst`` says it:
    0.0.0.0/0 or ::/0, by the gateway's family; IPv4 without one)."""
    if isinstance(dst, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return dst
    if not isinstance(dst, str):
        raise TypeError(f"destination must be a CIDR str or an ipaddress network, not {type(dst).__name__}")
    if dst == "default":
        return ipaddress.ip_network("::/0" if gateway is not None and gateway.version == 6
                                    else "0.0.0.0/0")
    try:
        return ipaddress.ip_network(dst)
    except ValueError as e:
        raise ValueError(f"destination {dst!r} is not a network: {e}") from None


def parse_route(dst: object, gateway: object) -> tuple:
    """(destination, gateway or None), both of one family."""
    via = None if gateway is None else parse_gateway(gateway)
    network = parse_destination(dst, via)
    if via is not None and via.version != network.version:
        raise ValueError(f"gateway {via} is not of the family of destination {network}")
    return network, via


def table_number(table: Union[int, str]) -> Optional[int]:
    """A routing table: a number, or "main", "local", "default"; "all": None."""
    if isinstance(table, str):
        if table == "all":
            return None
        if table not in TABLES:
            raise ValueError(f"table must be a number, all, or one of {', '.join(TABLES)}, "
                             f"not {table!r}")
        return TABLES[table]
    return v.integer(table, "table", 1, 2**32 - 1)


# -- messages ----------------------------------------------------------------------

def default_network(gateway: v.IPAddress) -> IPNetwork:
    """The default route's destination in the gateway's family."""
    return ipaddress.ip_network("0.0.0.0/0" if gateway.version == 4 else "::/0")


def _route(msg_type: int, nlflags: int, network: IPNetwork, via: Optional[v.IPAddress],
           index: int, exact: bool = True, metric: Optional[int] = None) -> Encoder:
    """Main table, proto boot, unicast; scope global through a gateway, link
    without one (as ``ip route add`` chooses).  A deletion that is not
    ``exact`` matches any protocol and scope, as ``ip route del`` does."""
    family = AF_INET if network.version == 4 else AF_INET6
    if exact:
        protocol, rtype = RTPROT_BOOT, RTN_UNICAST
        scope = RT_SCOPE_UNIVERSE if via is not None else RT_SCOPE_LINK
    else:
        protocol, scope, rtype = RTPROT_UNSPEC, RT_SCOPE_NOWHERE, RTN_UNSPEC
    return route_encoder(msg_type, nlflags, family=family,
                         dst=network.network_address.packed if network.prefixlen else None,
                         dst_len=network.prefixlen, gateway=None if via is None else via.packed,
                         oif=index, table=RT_TABLE_MAIN, protocol=protocol, scope=scope,
                         rtype=rtype, priority=metric)


def add(network: IPNetwork, via: Optional[v.IPAddress], index: int) -> Encoder:
    """``ip route add DST [via GATEWAY] dev INDEX`` in the main table."""
    return _route(RTM_NEWROUTE, CREATE, network, via, index)


def replace(network: IPNetwork, via: Optional[v.IPAddress], index: int) -> Encoder:
    """``ip route replace DST [via GATEWAY] dev INDEX``: added, or put in
    place of the route to DST (same table, metric and type)."""
    return _route(RTM_NEWROUTE, REPLACE, network, via, index)


def delete(network: IPNetwork, via: Optional[v.IPAddress], index: int) -> Encoder:
    """``ip route del DST [via GATEWAY] dev INDEX``: the main table's route
    of any protocol and scope (the lowest metric first)."""
    return _route(RTM_DELROUTE, 0, network, via, index, exact=False)


def remove_added(network: IPNetwork, via: Optional[v.IPAddress], index: int) -> Encoder:
    """The deletion of exactly the route ``add`` made — proto boot, its
    scope, and for IPv6 the metric the kernel gave it — never another
    route to DST (the undo of ``add`` in a transaction)."""
    metric = None if network.version == 4 else IP6_RT_PRIO_USER
    return _route(RTM_DELROUTE, 0, network, via, index, metric=metric)


def dump(family: int) -> Encoder:
    """``ip route show table all``: RTM_GETROUTE with NLM_F_DUMP, every
    route of ``family`` (AF_UNSPEC: both) in every table."""
    return route_dump_encoder(family)
