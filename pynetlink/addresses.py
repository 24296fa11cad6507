"""Address requests (RTM_NEWADDR / RTM_DELADDR)."""
from __future__ import annotations

import ipaddress

from . import _validate as v
from ._core import K, Request, addr_encoder

CREATE = K.NLM_F_CREATE | K.NLM_F_EXCL


def parse(raw_ip: object) -> v.IPInterface:
    return v.cidr(raw_ip)


def _encoder(msg_type: int, nlflags: int, iface: v.IPInterface, index: int):
    """IPv4 gets the subnet's broadcast address (none for /31 and /32) and
    host scope inside 127.0.0.0/8, as ``ip`` does; IPv6 lets the kernel choose."""
    prefixlen = iface.network.prefixlen
    local = iface.packed
    if isinstance(iface, ipaddress.IPv4Interface):
        host_bits = (1 << (32 - prefixlen)) - 1
        broadcast = (int(iface) | host_bits).to_bytes(4, "big") if prefixlen < 31 else None
        return addr_encoder(msg_type, nlflags, index=index, family=K.AF_INET, prefixlen=prefixlen,
                            local=local, broadcast=broadcast,
                            scope=K.RT_SCOPE_HOST if local[0] == 127 else K.RT_SCOPE_UNIVERSE)
    return addr_encoder(msg_type, nlflags, index=index, family=K.AF_INET6, prefixlen=prefixlen,
                        local=local, scope=K.RT_SCOPE_UNIVERSE)


def add(name: str, raw_ip: object, iface: v.IPInterface, index: int) -> Request:
    """``ip addr add ADDR/PREFIX [broadcast BRD] dev NAME``."""
    return Request("set_interface_ip", (name, raw_ip), name,
                   _encoder(K.RTM_NEWADDR, CREATE, iface, index))


def delete(name: str, raw_ip: object, iface: v.IPInterface, index: int) -> Request:
    """``ip addr del ADDR/PREFIX dev NAME``."""
    return Request("delete_address", (name, raw_ip), name, _encoder(K.RTM_DELADDR, 0, iface, index))
