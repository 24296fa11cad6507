"""Route requests (RTM_NEWROUTE / RTM_DELROUTE)."""
from __future__ import annotations

import ipaddress
from typing import Optional, Union

from . import _validate as v
from ._core import K, Request, route_encoder

CREATE = K.NLM_F_CREATE | K.NLM_F_EXCL


def parse_gateway(ip: object) -> v.IPAddress:
    return v.ip(ip, "gateway")


def _default_route(msg_type: int, nlflags: int, gateway: v.IPAddress, index: int):
    family = K.AF_INET if isinstance(gateway, ipaddress.IPv4Address) else K.AF_INET6
    return route_encoder(msg_type, nlflags, family=family, gateway=gateway.packed, oif=index,
                         table=K.RT_TABLE_MAIN, protocol=K.RTPROT_BOOT,
                         scope=K.RT_SCOPE_UNIVERSE, rtype=K.RTN_UNICAST)


def add_default(ip: object, gateway: v.IPAddress, iface_name: str, index: int) -> Request:
    """``ip route add default via GATEWAY dev IFACE`` in the main table
    (IPv4 or IPv6, by the gateway's family)."""
    return Request("set_default_gateway", (ip, iface_name), iface_name,
                   _default_route(K.RTM_NEWROUTE, CREATE, gateway, index))


def delete_default(ip: object, gateway: v.IPAddress, iface_name: str, index: int) -> Request:
    """``ip route del default via GATEWAY dev IFACE``."""
    return Request("delete_default_gateway", (ip, iface_name), iface_name,
                   _default_route(K.RTM_DELROUTE, 0, gateway, index))


IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_destination(dst: object) -> IPNetwork:
    """A route's destination: 'NET/PREFIX' (no host bits, as the kernel
    demands) or an ipaddress network."""
    if isinstance(dst, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return dst
    if not isinstance(dst, str):
        raise TypeError(f"destination must be a CIDR str or an ipaddress network, not {type(dst).__name__}")
    try:
        return ipaddress.ip_network(dst)
    except ValueError as e:
        raise ValueError(f"destination {dst!r} is not a network: {e}") from None


def parse_route(dst: object, gateway: object) -> tuple:
    """(destination, gateway or None), both of one family."""
    network = parse_destination(dst)
    via = None if gateway is None else parse_gateway(gateway)
    if via is not None and via.version != network.version:
        raise ValueError(f"gateway {via} is not of the family of destination {network}")
    return network, via


def _route(msg_type: int, nlflags: int, network: IPNetwork, via: Optional[v.IPAddress],
           index: int):
    """Main table, proto boot; scope global through a gateway, link without
    one (as ``ip route add`` chooses)."""
    family = K.AF_INET if network.version == 4 else K.AF_INET6
    return route_encoder(msg_type, nlflags, family=family, dst=network.network_address.packed,
                         dst_len=network.prefixlen, gateway=None if via is None else via.packed,
                         oif=index, table=K.RT_TABLE_MAIN, protocol=K.RTPROT_BOOT,
                         scope=K.RT_SCOPE_UNIVERSE if via is not None else K.RT_SCOPE_LINK,
                         rtype=K.RTN_UNICAST)


def add(dst: object, network: IPNetwork, via: Optional[v.IPAddress], iface_name: str,
        index: int) -> Request:
    """``ip route add DST [via GATEWAY] dev IFACE`` in the main table."""
    return Request("add_route", (dst, iface_name), iface_name,
                   _route(K.RTM_NEWROUTE, CREATE, network, via, index))


def delete(dst: object, network: IPNetwork, via: Optional[v.IPAddress], iface_name: str,
           index: int) -> Request:
    """``ip route del DST [via GATEWAY] dev IFACE``."""
    return Request("delete_route", (dst, iface_name), iface_name,
                   _route(K.RTM_DELROUTE, 0, network, via, index))
