"""Route requests (RTM_NEWROUTE)."""
from __future__ import annotations

import ipaddress

from . import _validate as v
from ._core import K, Request, route_encoder

CREATE = K.NLM_F_CREATE | K.NLM_F_EXCL


def parse_gateway(ip: object) -> v.IPAddress:
    return v.ip(ip, "gateway")


def add_default(ip: object, gateway: v.IPAddress, iface_name: str, index: int) -> Request:
    """``ip route add default via GATEWAY dev IFACE`` in the main table
    (IPv4 or IPv6, by the gateway's family)."""
    family = K.AF_INET if isinstance(gateway, ipaddress.IPv4Address) else K.AF_INET6
    return Request("set_default_gateway", (ip, iface_name), iface_name,
                   route_encoder(K.RTM_NEWROUTE, CREATE, family=family, gateway=gateway.packed,
                                 oif=index, table=K.RT_TABLE_MAIN, protocol=K.RTPROT_BOOT,
                                 scope=K.RT_SCOPE_UNIVERSE, rtype=K.RTN_UNICAST))
