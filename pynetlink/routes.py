"""Route requests (RTM_NEWROUTE / RTM_DELROUTE)."""
from __future__ import annotations

import ipaddress

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
